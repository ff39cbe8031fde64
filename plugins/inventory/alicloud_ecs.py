from __future__ import annotations

DOCUMENTATION = r"""
name: alicloud_ecs
short_description: ECS instances as inventory, by tag or by scaling group
description:
  - Lists the running ECS instances of a region (optionally only those with given tags, or the
    members of given scaling groups) as hosts named by instance id.
  - Groups - C(alicloud), C(zone_<zone>), C(spot) or C(pay_as_you_go), and
    C(scaling_group_<name>) for members of a scaling group; more with O(keyed_groups).
  - Connection - on the real cloud SSH to the public address (else the private one); on
    localcloud the C(containers.podman.podman) connection to the container named after the
    instance id. O(connection=auto) chooses localcloud when the endpoint comes from localcloud.
  - Endpoints and credentials - the options, then the environment (as the alicloud_* modules),
    then, with O(localcloud), localcloud's env file.
    If neither gives credentials the inventory is empty, with a warning.
options:
  plugin:
    description: The name of this plugin.
    required: true
    choices: [spotfirst.finetune.alicloud_ecs]
  region:
    description: The region. Defaults to E(ALIBABA_CLOUD_REGION_ID).
    type: str
  access_key:
    description: The AccessKey ID. Defaults to E(ALIBABA_CLOUD_ACCESS_KEY_ID).
    type: str
  secret_key:
    description: The AccessKey secret. Defaults to E(ALIBABA_CLOUD_ACCESS_KEY_SECRET).
    type: str
  security_token:
    description: An STS token. Defaults to E(ALIBABA_CLOUD_SECURITY_TOKEN).
    type: str
  endpoint:
    description: C(host:port) of every RPC product (localcloud). Defaults to E(ALIBABA_CLOUD_ENDPOINT).
    type: str
  localcloud:
    description:
      - Take region, endpoint and credentials from localcloud's env file (see O(localcloud_home)) where
        the options and the environment give none. Only localcloud's inventory sets it; a real
        account's inventory never reads localcloud's file, so it never lists localcloud's instances
        with localcloud's key because E(LOCALCLOUD_HOME) happens to be set.
    type: bool
    default: false
  localcloud_home:
    description:
      - localcloud's state directory; its C(env) file gives region, endpoint and credentials (with O(localcloud)).
      - Defaults to E(LOCALCLOUD_HOME), then C(.localcloud) next to the inventory's parent directories.
    type: str
  tags:
    description: Only instances that carry all these tags (a tag with an empty value matches any value).
    type: dict
    default: {}
  scaling_groups:
    description: Only members of these scaling groups (names or ids).
    type: list
    elements: str
    default: []
  statuses:
    description: Instance statuses to list.
    type: list
    elements: str
    default: [Running]
  connection:
    description: How Ansible reaches the instances.
    type: str
    choices: [auto, ssh, podman]
    default: auto
  ssh_user:
    description: The SSH user on the real cloud.
    type: str
    default: root
extends_documentation_fragment:
  - constructed
"""

EXAMPLES = r"""
# inventory/local/localcloud.alicloud_ecs.yml
plugin: spotfirst.finetune.alicloud_ecs
localcloud: true
scaling_groups: [ess-lora-deepseek7b]

# inventory/alicloud/ecs.alicloud_ecs.yml (by tag, with a group per value of the tag "role"):
# plugin: spotfirst.finetune.alicloud_ecs
# region: cn-hangzhou
# tags:
#   project: ess-lora-deepseek7b
# keyed_groups:
#   - key: alicloud_tags.role | default('none')
#     prefix: role
"""

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from ansible.errors import AnsibleParserError  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable  # noqa: E402

SUFFIXES = ("alicloud_ecs.yml", "alicloud_ecs.yaml")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                values[key.strip()] = value.strip()
    return values


def safe_group(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "spotfirst.finetune.alicloud_ecs"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(SUFFIXES)

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        settings = self._settings(Path(path))
        if not (settings["access_key"] and settings["secret_key"]):
            self.display.warning(f"alicloud_ecs ({path}): no credentials (options, environment or localcloud env "
                                 "file); the inventory of ECS instances is empty.")
            return
        try:
            instances = self._instances(settings)
        except Exception as err:
            code = getattr(err, "code", None)
            if code:
                raise AnsibleParserError(f"alicloud_ecs ({path}): {code}: "
                                         f"{(getattr(err, 'data', None) or {}).get('Message', err)}") from None
            self.display.warning(f"alicloud_ecs ({path}): the endpoint could not be reached ({err!r:.200}); "
                                 "the inventory of ECS instances is empty.")
            return
        for instance, group_name in instances:
            self._add(instance, group_name, settings)

    # -- settings ---------------------------------------------------------------------------
    def _settings(self, path: Path) -> dict[str, Any]:
        home = self.get_option("localcloud_home") or os.environ.get("LOCALCLOUD_HOME")
        env_file = Path(home) / "env" if home else None
        if not self.get_option("localcloud"):
            env_file = None
        elif env_file is None:
            for directory in path.resolve().parents:
                if (directory / ".localcloud" / "env").is_file():
                    env_file = directory / ".localcloud" / "env"
                    break
        local = read_env_file(env_file) if env_file else {}

        def pick(option: str, env: str) -> str | None:
            return self.get_option(option) or os.environ.get(env) or local.get(env)

        endpoint = self.get_option("endpoint") or os.environ.get("ALIBABA_CLOUD_ENDPOINT") or local.get(
            "LOCALCLOUD_ENDPOINT")
        connection = self.get_option("connection")
        if connection == "auto":
            connection = "podman" if endpoint and endpoint == local.get("LOCALCLOUD_ENDPOINT") else "ssh"
        return {
            "region": pick("region", "ALIBABA_CLOUD_REGION_ID") or "cn-hangzhou",
            "access_key": pick("access_key", "ALIBABA_CLOUD_ACCESS_KEY_ID"),
            "secret_key": pick("secret_key", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
            "security_token": pick("security_token", "ALIBABA_CLOUD_SECURITY_TOKEN"),
            "endpoint": endpoint, "connection": connection,
        }

    def _client(self, product: str, settings: dict[str, Any]) -> Any:
        from alibabacloud_tea_openapi.models import Config
        if product == "ecs":
            from alibabacloud_ecs20140526.client import Client
        else:
            from alibabacloud_ess20220222.client import Client
        config = Config(access_key_id=settings["access_key"], access_key_secret=settings["secret_key"],
                        security_token=settings["security_token"], region_id=settings["region"])
        if settings["endpoint"]:
            config.endpoint = settings["endpoint"].split("://", 1)[-1]
            config.protocol = "https" if settings["endpoint"].startswith("https://") else "http"
        return Client(config)

    # -- listing ----------------------------------------------------------------------------
    def _members(self, settings: dict[str, Any]) -> dict[str, str] | None:
        """Instance id -> scaling group name, for the wanted groups (None: no group filter)."""
        wanted = self.get_option("scaling_groups")
        if not wanted:
            return None
        from alibabacloud_ess20220222 import models
        ess = self._client("ess", settings)
        groups = ess.describe_scaling_groups(models.DescribeScalingGroupsRequest(
            region_id=settings["region"], page_size=50)).body.scaling_groups or []
        members = {}
        for group in groups:
            if group.scaling_group_id not in wanted and group.scaling_group_name not in wanted:
                continue
            found = ess.describe_scaling_instances(models.DescribeScalingInstancesRequest(
                region_id=settings["region"], scaling_group_id=group.scaling_group_id, page_size=50)).body
            for member in found.scaling_instances or []:
                members[member.instance_id] = group.scaling_group_name
        return members

    def _instances(self, settings: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
        from alibabacloud_ecs20140526 import models
        ecs = self._client("ecs", settings)
        members = self._members(settings)
        if members is not None and not members:
            return []
        tags = [models.DescribeInstancesRequestTag(key=k, value=str(v) if v else None)
                for k, v in (self.get_option("tags") or {}).items()]
        statuses = set(self.get_option("statuses"))
        found: list[tuple[dict[str, Any], str | None]] = []
        page = 1
        while True:
            request = models.DescribeInstancesRequest(region_id=settings["region"], page_size=100, page_number=page,
                                                      tag=tags or None)
            if members is not None:
                request.instance_ids = json.dumps(sorted(members))
            body = ecs.describe_instances(request).body.to_map()
            batch = (body.get("Instances") or {}).get("Instance", [])
            for instance in batch:
                if instance.get("Status") in statuses:
                    found.append((instance, (members or {}).get(instance["InstanceId"])))
            if len(batch) < 100:
                return found
            page += 1

    # -- hosts ------------------------------------------------------------------------------
    def _add(self, instance: dict[str, Any], group_name: str | None, settings: dict[str, Any]) -> None:
        host = instance["InstanceId"]
        self.inventory.add_group("alicloud")
        self.inventory.add_host(host, group="alicloud")
        tags = {t.get("TagKey"): t.get("TagValue") for t in (instance.get("Tags") or {}).get("Tag", [])}
        public = ((instance.get("PublicIpAddress") or {}).get("IpAddress") or [None])[0]
        private = (((instance.get("VpcAttributes") or {}).get("PrivateIpAddress") or {}).get("IpAddress")
                   or [None])[0]
        spot = instance.get("SpotStrategy") not in (None, "", "NoSpot")
        hostvars = {
            "alicloud_instance_id": host, "alicloud_instance_name": instance.get("InstanceName"),
            "alicloud_zone": instance.get("ZoneId"), "alicloud_instance_type": instance.get("InstanceType"),
            "alicloud_status": instance.get("Status"), "alicloud_spot_strategy": instance.get("SpotStrategy"),
            "alicloud_public_ip": public, "alicloud_private_ip": private, "alicloud_tags": tags,
            "alicloud_scaling_group": group_name,
        }
        if settings["connection"] == "podman":
            hostvars.update(ansible_connection="containers.podman.podman", ansible_host=host)
        else:
            hostvars.update(ansible_connection="ssh", ansible_host=public or private,
                            ansible_user=self.get_option("ssh_user"))
        for key, value in hostvars.items():
            self.inventory.set_variable(host, key, value)
        groups = [f"zone_{safe_group(instance.get('ZoneId') or 'unknown')}", "spot" if spot else "pay_as_you_go"]
        if group_name:
            groups.append(f"scaling_group_{safe_group(group_name)}")
        for group in groups:
            self.inventory.add_group(group)
            self.inventory.add_child(group, host)
        strict = self.get_option("strict")
        self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)
