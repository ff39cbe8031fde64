#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_scaling_configuration
short_description: Manage a scaling configuration (spot instances from a custom image)
description:
  - Creates, updates in place and deletes a scaling configuration of a scaling group, found by
    its name in the group. It says how the group launches instances - image, instance types,
    spot strategy and price limits, the one-hour protection period, RAM role, security group,
    user data, system disk.
  - An unknown instance type fails before anything is created.
options:
  name:
    description: The configuration name; with O(scaling_group) it identifies the configuration.
    type: str
    required: true
    aliases: [scaling_configuration_name]
  scaling_group:
    description: The scaling group, by id or name.
    type: str
    required: true
  image_id:
    description: The image instances boot from. Required to create.
    type: str
  instance_types:
    description: Instance types, in priority order. Required to create.
    type: list
    elements: str
  spot_strategy:
    description:
      - V(SpotAsPriceGo) bids the market price (the recipe's automatic bid), V(SpotWithPriceLimit)
        bids at most O(spot_price_limits), V(NoSpot) launches pay-as-you-go.
    type: str
    choices: [NoSpot, SpotWithPriceLimit, SpotAsPriceGo]
  spot_price_limits:
    description: Highest hourly price per instance type, with V(SpotWithPriceLimit).
    type: list
    elements: dict
    suboptions:
      instance_type:
        description: The instance type.
        type: str
        required: true
      price_limit:
        description: The price, RMB per hour.
        type: float
        required: true
  spot_duration:
    description: Protection period of spot instances in hours (1 in the recipe; 0 for none).
    type: int
  spot_interruption_behavior:
    description:
      - What a reclaim does to the instance. ESS scaling configurations support only C(Terminate) (ECS's own
        C(Stop) is refused by ESS).
    type: str
    choices: [Terminate]
  ram_role_name:
    description: The RAM role of the instances.
    type: str
  security_group_id:
    description: The security group of the instances. Required to create.
    type: str
  user_data:
    description: User data (plain text; the module encodes it).
    type: str
  system_disk_category:
    description: The system disk category.
    type: str
  system_disk_size:
    description: The system disk size in GiB.
    type: int
  key_pair_name:
    description: An SSH key pair for the instances.
    type: str
  password_inherit:
    description: Keep the password preset in the image (the recipe's choice).
    type: bool
  instance_name:
    description: Name given to the launched instances.
    type: str
  state:
    description: Whether the configuration should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Create the spot configuration of the training group
  alicloud_scaling_configuration:
    name: ess-config
    scaling_group: ess-lora-deepseek7b
    image_id: "{{ image_id }}"
    instance_types: [ecs.gn7i-c8g1.2xlarge]
    spot_strategy: SpotAsPriceGo
    spot_duration: 1
    security_group_id: "{{ security_group_id }}"
    ram_role_name: ess-lora-deepseek7b-role
    password_inherit: true
"""

RETURN = r"""
scaling_configuration:
  description: The configuration (empty when absent).
  returned: always
  type: dict
  contains:
    scaling_configuration_id: {description: The id., type: str, sample: asc-bp1abc}
    scaling_configuration_name: {description: The name., type: str}
    image_id: {description: The image., type: str}
    instance_types: {description: The instance types., type: list, elements: str}
    spot_strategy: {description: The spot strategy., type: str}
    lifecycle_state: {description: Active when the group launches from it., type: str}
"""

import base64  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_ess import (  # noqa: E402
    find_configuration,
    group_id_of,
)

FIELDS = {
    "image_id": "ImageId", "spot_strategy": "SpotStrategy", "spot_duration": "SpotDuration",
    "spot_interruption_behavior": "SpotInterruptionBehavior", "ram_role_name": "RamRoleName",
    "security_group_id": "SecurityGroupId", "key_pair_name": "KeyPairName", "password_inherit": "PasswordInherit",
    "instance_name": "InstanceName",
}
GONE = ("InvalidScalingConfigurationId.NotFound",)


def encoded_user_data(params: dict[str, Any]) -> str | None:
    if params.get("user_data") is None:
        return None
    return base64.b64encode(params["user_data"].encode()).decode()


def price_limits(params: dict[str, Any]) -> list[dict[str, Any]] | None:
    if params.get("spot_price_limits") is None:
        return None
    return [{"InstanceType": x["instance_type"], "PriceLimit": float(x["price_limit"])}
            for x in params["spot_price_limits"]]


def config_changes(config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    for option, field in FIELDS.items():
        if params.get(option) is not None and params[option] != config.get(field):
            changes[field] = params[option]
    if params.get("instance_types") and params["instance_types"] != list(config.get("InstanceTypes") or []):
        changes["InstanceTypes"] = params["instance_types"]
    limits = price_limits(params)
    if limits is not None:
        current = [{"InstanceType": x["InstanceType"], "PriceLimit": float(x["PriceLimit"])}
                   for x in config.get("SpotPriceLimits") or []]
        if limits != current:
            changes["SpotPriceLimits"] = limits
    user_data = encoded_user_data(params)
    if user_data is not None and user_data != (config.get("UserData") or ""):
        changes["UserData"] = user_data
    disk = {}
    category = config.get("SystemDiskCategory") or (config.get("SystemDisk") or {}).get("Category")
    size = config.get("SystemDiskSize") or (config.get("SystemDisk") or {}).get("Size")
    if params.get("system_disk_category") and params["system_disk_category"] != category:
        disk["Category"] = params["system_disk_category"]
    if params.get("system_disk_size") and params["system_disk_size"] != size:
        disk["Size"] = params["system_disk_size"]
    if disk:
        changes["SystemDisk"] = disk
    return changes


def create_params(module: AlicloudModule, group_id: str) -> dict[str, Any]:
    p = module.params
    params = {field: p.get(option) for option, field in FIELDS.items()}
    disk = {k: v for k, v in (("Category", p.get("system_disk_category")), ("Size", p.get("system_disk_size")))
            if v is not None}
    params.update({"ScalingGroupId": group_id, "ScalingConfigurationName": p["name"],
                   "InstanceTypes": p["instance_types"], "SpotPriceLimits": price_limits(p),
                   "UserData": encoded_user_data(p), "SystemDisk": disk or None})
    return params


def ensure_present(module: AlicloudModule, group_id: str, config: dict[str, Any] | None) -> tuple[bool, Any]:
    p = module.params
    if config is None:
        missing = [o for o in ("image_id", "instance_types", "security_group_id") if not p.get(o)]
        if missing:
            module.fail_json(msg=f"To create the scaling configuration {p['name']} give {', '.join(missing)}.")
        if module.check_mode:
            return True, {k: v for k, v in create_params(module, group_id).items() if v is not None}
        module.call("ess", "CreateScalingConfiguration", create_params(module, group_id))
        return True, find_configuration(module, group_id, p["name"])
    changes = config_changes(config, p)
    if not changes:
        return False, config
    if module.check_mode:
        return True, {**config, **changes}
    module.call("ess", "ModifyScalingConfiguration", {
        "ScalingConfigurationId": config["ScalingConfigurationId"], **changes})
    return True, find_configuration(module, group_id, p["name"])


def ensure_absent(module: AlicloudModule, config: dict[str, Any] | None) -> bool:
    if config is None:
        return False
    if not module.check_mode:
        module.call("ess", "DeleteScalingConfiguration", {
            "ScalingConfigurationId": config["ScalingConfigurationId"]}, missing_ok=GONE)
    return True


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        name=dict(type="str", required=True, aliases=["scaling_configuration_name"]),
        scaling_group=dict(type="str", required=True),
        image_id=dict(type="str"),
        instance_types=dict(type="list", elements="str"),
        spot_strategy=dict(type="str", choices=["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"]),
        spot_price_limits=dict(type="list", elements="dict", options=dict(
            instance_type=dict(type="str", required=True),
            price_limit=dict(type="float", required=True),
        )),
        spot_duration=dict(type="int"),
        spot_interruption_behavior=dict(type="str", choices=["Terminate"]),
        ram_role_name=dict(type="str"),
        security_group_id=dict(type="str"),
        user_data=dict(type="str"),
        system_disk_category=dict(type="str"),
        system_disk_size=dict(type="int"),
        key_pair_name=dict(type="str", no_log=False),
        password_inherit=dict(type="bool"),
        instance_name=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    ))
    p = module.params
    if p["spot_strategy"] == "SpotWithPriceLimit" and not p.get("spot_price_limits"):
        module.fail_json(msg="spot_strategy SpotWithPriceLimit needs spot_price_limits.")
    module.check_region()
    if p["state"] == "present" and p.get("instance_types"):
        module.check_instance_types(p["instance_types"])
    group_id = group_id_of(module, p["scaling_group"])
    if group_id is None:
        if p["state"] == "absent":
            module.exit_resource(False, "scaling_configuration", None, None)
        module.fail_json(msg=f"No scaling group {p['scaling_group']}; create it first (alicloud_scaling_group).")
    before = find_configuration(module, group_id, p["name"])
    if p["state"] == "absent":
        module.exit_resource(ensure_absent(module, before), "scaling_configuration", before, None)
    changed, after = ensure_present(module, group_id, before)
    module.exit_resource(changed, "scaling_configuration", before, after)


if __name__ == "__main__":
    main()
