#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_ecs_instance
short_description: Manage one pay-as-you-go ECS instance (the image template)
description:
  - Creates, starts, stops and releases one pay-as-you-go ECS instance, found by its name.
  - Given O(instance_id) (with O(state=absent)) it releases that instance, whatever launched it, as
    the console's "Release" does (C(DeleteInstance) with C(Force=true)); an instance already gone is
    C(changed=false).
  - In place it updates the RAM role, tags and description; the image, instance type, vSwitch,
    security group and system disk of an existing instance cannot change, and the module says so.
  - An unknown instance type or zone fails before anything is created.
options:
  name:
    description: The instance name; it identifies the instance. Required unless O(instance_id) is given.
    type: str
    aliases: [instance_name]
  instance_id:
    description:
      - The id of an instance to release (only with O(state=absent)), for example a member of a
        scaling group; mutually exclusive with O(name).
    type: str
  image_id:
    description: The image to boot. Required to create.
    type: str
  instance_type:
    description: The instance type, for example C(ecs.gn7i-c8g1.2xlarge). Required to create.
    type: str
  vswitch_id:
    description: The vSwitch (and so the zone and VPC). Required to create.
    type: str
  security_group_id:
    description: The security group. Required to create.
    type: str
  ram_role_name:
    description: The RAM role the instance takes credentials from; V("") detaches it.
    type: str
  key_pair_name:
    description: The SSH key pair for logging on (set at creation).
    type: str
  password:
    description: The root password instead of a key pair (set at creation; never logged).
    type: str
  internet_max_bandwidth_out:
    description: Public bandwidth in Mbit/s; above 0 the instance gets a public IPv4 address (set at creation).
    type: int
    default: 0
  system_disk_category:
    description: The system disk category.
    type: str
    default: cloud_essd
  system_disk_size:
    description: The system disk size in GiB (set at creation).
    type: int
    default: 60
  user_data:
    description: User data (plain text; the module encodes it), set at creation.
    type: str
  description:
    description: The description.
    type: str
  tags:
    description: Tags; tags not listed are removed unless O(purge_tags=false).
    type: dict
  purge_tags:
    description: Remove tags that O(tags) does not list.
    type: bool
    default: true
  state:
    description:
      - V(present) creates the instance (it starts) and leaves a stopped one stopped; V(running)
        and V(stopped) also start or stop it; V(absent) releases it.
    type: str
    choices: [present, running, stopped, absent]
    default: running
  wait:
    description: Wait until the instance reaches the state.
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds.
    type: int
    default: 600
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Create the template instance of the image
  alicloud_ecs_instance:
    name: ess-lora-deepseek7b-template
    image_id: ubuntu_22_04_x64_20G_alibase_20240130.vhd
    instance_type: ecs.gn7i-c8g1.2xlarge
    vswitch_id: "{{ vswitch_id }}"
    security_group_id: "{{ security_group_id }}"
    ram_role_name: ess-lora-deepseek7b-role
    key_pair_name: my-key
    internet_max_bandwidth_out: 100
    system_disk_size: 60

- name: Stop the template instance
  alicloud_ecs_instance:
    name: ess-lora-deepseek7b-template
    state: stopped

- name: Release the training instance by id (the recipe's test of an interruption)
  alicloud_ecs_instance:
    instance_id: i-bp1abc
    state: absent
    wait: false
"""

RETURN = r"""
instance:
  description:
    - The instance (empty when absent). With O(instance_id) the instance as ECS described it
      before the release (empty when it was gone).
  returned: always
  type: dict
  contains:
    instance_id: {description: The id., type: str, sample: i-bp1abc}
    instance_name: {description: The name., type: str}
    status: {description: The status., type: str, sample: Running}
    instance_type: {description: The type., type: str}
    zone_id: {description: The zone., type: str}
    image_id: {description: The image., type: str}
    ram_role_name: {description: The RAM role., type: str}
    tags: {description: The tags., type: dict}
"""

import base64  # noqa: E402
import json  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule, snake  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_ecs import (  # noqa: E402
    INSTANCE_GONE,
    describe_instance,
    find_instance,
    wait_instance_status,
)

FIXED = (("image_id", "ImageId"), ("instance_type", "InstanceType"))


def fixed_conflicts(instance: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """Options that differ from the instance but cannot change in place."""
    conflicts = [f"{option} ({instance.get(field)} -> {params[option]})" for option, field in FIXED
                 if params.get(option) and params[option] != instance.get(field)]
    vswitch = (instance.get("VpcAttributes") or {}).get("VSwitchId")
    if params.get("vswitch_id") and params["vswitch_id"] != vswitch:
        conflicts.append(f"vswitch_id ({vswitch} -> {params['vswitch_id']})")
    groups = (instance.get("SecurityGroupIds") or {}).get("SecurityGroupId", [])
    if params.get("security_group_id") and params["security_group_id"] not in groups:
        conflicts.append(f"security_group_id ({', '.join(groups)} -> {params['security_group_id']})")
    return conflicts


def create(module: AlicloudModule) -> str:
    p = module.params
    missing = [o for o in ("image_id", "instance_type", "vswitch_id", "security_group_id") if not p.get(o)]
    if missing:
        module.fail_json(msg=f"To create the instance {p['name']} give {', '.join(missing)}.")
    body = module.call("ecs", "RunInstances", {
        "RegionId": module.region, "InstanceName": p["name"], "HostName": None, "ImageId": p["image_id"],
        "InstanceType": p["instance_type"], "VSwitchId": p["vswitch_id"], "SecurityGroupId": p["security_group_id"],
        "InstanceChargeType": "PostPaid", "SpotStrategy": "NoSpot", "RamRoleName": p.get("ram_role_name") or None,
        "KeyPairName": p.get("key_pair_name"), "Password": p.get("password"),
        "InternetMaxBandwidthOut": p["internet_max_bandwidth_out"] or None,
        "InternetChargeType": "PayByTraffic" if p["internet_max_bandwidth_out"] else None,
        "SystemDisk": {"Category": p["system_disk_category"], "Size": str(p["system_disk_size"])},
        "UserData": base64.b64encode(p["user_data"].encode()).decode() if p.get("user_data") else None,
        "Description": p.get("description"), "Amount": 1,
        "Tag": [{"Key": k, "Value": str(v)} for k, v in (p.get("tags") or {}).items()] or None,
    })
    return body["InstanceIdSets"]["InstanceIdSet"][0]


def update_role(module: AlicloudModule, instance: dict[str, Any]) -> bool:
    wanted = module.params.get("ram_role_name")
    if wanted is None or wanted == instance.get("RamRoleName", ""):
        return False
    if not module.check_mode:
        ids = json.dumps([instance["InstanceId"]])
        if instance.get("RamRoleName"):
            module.call("ecs", "DetachInstanceRamRole", {"RegionId": module.region, "InstanceIds": ids,
                                                         "RamRoleName": instance["RamRoleName"]})
        if wanted:
            module.call("ecs", "AttachInstanceRamRole", {"RegionId": module.region, "InstanceIds": ids,
                                                         "RamRoleName": wanted})
    return True


def update_tags(module: AlicloudModule, instance: dict[str, Any]) -> bool:
    p = module.params
    if p.get("tags") is None:
        return False
    wanted = {str(k): str(v) for k, v in p["tags"].items()}
    current = instance.get("Tags") or {}
    to_set = {k: v for k, v in wanted.items() if current.get(k) != v}
    to_remove = [k for k in current if k not in wanted] if p["purge_tags"] else []
    if not (to_set or to_remove):
        return False
    if not module.check_mode:
        target = {"RegionId": module.region, "ResourceType": "instance", "ResourceId": [instance["InstanceId"]]}
        if to_remove:
            module.call("ecs", "UntagResources", {**target, "TagKey": to_remove})
        if to_set:
            module.call("ecs", "TagResources", {**target, "Tag": [{"Key": k, "Value": v} for k, v in to_set.items()]})
    return True


def update_description(module: AlicloudModule, instance: dict[str, Any]) -> bool:
    wanted = module.params.get("description")
    if wanted is None or wanted == (instance.get("Description") or ""):
        return False
    if not module.check_mode:
        module.call("ecs", "ModifyInstanceAttribute", {"InstanceId": instance["InstanceId"], "Description": wanted})
    return True


def update_power(module: AlicloudModule, instance: dict[str, Any]) -> bool:
    state, status = module.params["state"], instance.get("Status")
    if state == "running" and status in ("Stopped", "Stopping"):
        action = "StartInstance"
    elif state == "stopped" and status in ("Running", "Starting", "Pending"):
        action = "StopInstance"
    else:
        return False
    if not module.check_mode:
        if status in ("Stopping", "Starting", "Pending"):
            wait_status(module, instance["InstanceId"], ("Stopped",) if status == "Stopping" else ("Running",))
        module.call("ecs", action, {"InstanceId": instance["InstanceId"]})
    return True


def wait_status(module: AlicloudModule, instance_id: str, statuses: tuple[str, ...]) -> None:
    wait_instance_status(module, instance_id, statuses, module.params["wait_timeout"])


def ensure_present(module: AlicloudModule, instance: dict[str, Any] | None) -> tuple[bool, Any]:
    p = module.params
    if instance is None:
        if module.check_mode:
            return True, {"InstanceName": p["name"], "Status": "Pending"}
        instance_id = create(module)
        if p["wait"] or p["state"] == "stopped":
            wait_status(module, instance_id, ("Running",))
        if p["state"] == "stopped":
            update_power(module, find_instance(module, p["name"]))
            if p["wait"]:
                wait_status(module, instance_id, ("Stopped",))
        return True, find_instance(module, p["name"])
    conflicts = fixed_conflicts(instance, p)
    if conflicts:
        module.fail_json(msg=f"The instance {p['name']} ({instance['InstanceId']}) differs in what cannot change in "
                             f"place: {'; '.join(conflicts)}. Release it (state=absent) and create it again.")
    changed = update_role(module, instance)
    changed |= update_tags(module, instance)
    changed |= update_description(module, instance)
    power = update_power(module, instance)
    if power and p["wait"] and not module.check_mode:
        wait_status(module, instance["InstanceId"], ("Running",) if p["state"] == "running" else ("Stopped",))
    changed |= power
    return changed, find_instance(module, p["name"]) if changed and not module.check_mode else instance


def ensure_absent(module: AlicloudModule, instance: dict[str, Any] | None) -> bool:
    """Release the instance (DeleteInstance, Force=true); gone already is no change."""
    if instance is None:
        return False
    if not module.check_mode:
        module.call("ecs", "DeleteInstance", {"InstanceId": instance["InstanceId"], "Force": True},
                    missing_ok=INSTANCE_GONE)
        if module.params["wait"]:
            wait_status(module, instance["InstanceId"], ())
    return True


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        name=dict(type="str", aliases=["instance_name"]),
        instance_id=dict(type="str"),
        image_id=dict(type="str"),
        instance_type=dict(type="str"),
        vswitch_id=dict(type="str"),
        security_group_id=dict(type="str"),
        ram_role_name=dict(type="str"),
        key_pair_name=dict(type="str", no_log=False),
        password=dict(type="str", no_log=True),
        internet_max_bandwidth_out=dict(type="int", default=0),
        system_disk_category=dict(type="str", default="cloud_essd"),
        system_disk_size=dict(type="int", default=60),
        user_data=dict(type="str"),
        description=dict(type="str"),
        tags=dict(type="dict"),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", default="running", choices=["present", "running", "stopped", "absent"]),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=600),
    ), mutually_exclusive=[["key_pair_name", "password"], ["name", "instance_id"]],
        required_one_of=[["name", "instance_id"]])
    p = module.params
    if p["instance_id"]:
        if p["state"] != "absent":
            module.fail_json(msg=f"instance_id ({p['instance_id']}) releases an instance: give state=absent, "
                                 "or manage an instance by its name.")
        module.require_region()
        before = describe_instance(module, p["instance_id"])
        module.exit_json(changed=ensure_absent(module, before), instance=snake(before) if before else {})
    module.check_region()
    if p["state"] != "absent" and p.get("instance_type"):
        module.check_instance_types([p["instance_type"]])
    before = find_instance(module, p["name"])
    if p["state"] == "absent":
        module.exit_resource(ensure_absent(module, before), "instance", before, None)
    changed, after = ensure_present(module, before)
    module.exit_resource(changed, "instance", before, after)


if __name__ == "__main__":
    main()
