#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_vswitch
short_description: Manage a vSwitch of a VPC in one zone
description:
  - Creates, renames and deletes a vSwitch, found by its VPC and CIDR block. Loop over zones to
    spread a scaling group across them.
  - An unknown zone fails before anything is created. A vSwitch cannot move to another zone;
    the module says so instead of replacing it.
options:
  vpc_id:
    description: The VPC.
    type: str
    required: true
  cidr_block:
    description: The vSwitch's CIDR block, inside the VPC's; it identifies the vSwitch.
    type: str
    required: true
  zone:
    description: The zone, for example C(cn-hangzhou-j). Required to create.
    type: str
    aliases: [zone_id]
  name:
    description: The name.
    type: str
    aliases: [vswitch_name]
  description:
    description: The description.
    type: str
  state:
    description: Whether the vSwitch should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Create a vSwitch in each training zone
  alicloud_vswitch:
    vpc_id: "{{ vpc.vpc.vpc_id }}"
    zone: "{{ item }}"
    cidr_block: "172.16.{{ index }}.0/24"
    name: "ess-lora-deepseek7b-{{ item }}"
  loop: [cn-hangzhou-j, cn-hangzhou-k]
  loop_control:
    index_var: index
"""

RETURN = r"""
vswitch:
  description: The vSwitch (empty when absent).
  returned: always
  type: dict
  contains:
    v_switch_id: {description: The id., type: str, sample: vsw-bp1abc}
    zone_id: {description: The zone., type: str}
    cidr_block: {description: The CIDR block., type: str}
    v_switch_name: {description: The name., type: str}
"""

import ipaddress  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402


def find_vswitch(module: AlicloudModule, vpc_id: str, cidr: str) -> dict[str, Any] | None:
    body = module.call("vpc", "DescribeVSwitches", {"RegionId": module.region, "VpcId": vpc_id,
                                                    "PageSize": 50}) or {}
    wanted = ipaddress.ip_network(cidr)
    for vswitch in (body.get("VSwitches") or {}).get("VSwitch", []):
        if ipaddress.ip_network(vswitch["CidrBlock"]) == wanted:
            return vswitch
    return None


def vswitch_changes(vswitch: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    if params.get("name") is not None and params["name"] != (vswitch.get("VSwitchName") or ""):
        changes["VSwitchName"] = params["name"]
    if params.get("description") is not None and params["description"] != (vswitch.get("Description") or ""):
        changes["Description"] = params["description"]
    return changes


def ensure_present(module: AlicloudModule, vswitch: dict[str, Any] | None) -> tuple[bool, Any]:
    p = module.params
    if vswitch is None:
        if not p.get("zone"):
            module.fail_json(msg="zone is required to create a vSwitch.")
        module.require_vpc(p["vpc_id"])
        if module.check_mode:
            return True, {"VpcId": p["vpc_id"], "ZoneId": p["zone"], "CidrBlock": p["cidr_block"],
                          "VSwitchName": p.get("name")}
        module.call("vpc", "CreateVSwitch", {
            "RegionId": module.region, "VpcId": p["vpc_id"], "ZoneId": p["zone"], "CidrBlock": p["cidr_block"],
            "VSwitchName": p.get("name"), "Description": p.get("description")})
        after = module.wait(lambda: find_vswitch(module, p["vpc_id"], p["cidr_block"]),
                            lambda v: bool(v) and v.get("Status") == "Available", timeout=120,
                            what=f"the vSwitch {p['cidr_block']} to be Available")
        return True, after
    if p.get("zone") and p["zone"] != vswitch["ZoneId"]:
        module.fail_json(msg=f"The vSwitch {vswitch['VSwitchId']} ({p['cidr_block']}) is in {vswitch['ZoneId']}, "
                             f"not {p['zone']}: a vSwitch cannot move between zones; delete it (state=absent) and "
                             "create it again, or use another CIDR block.")
    changes = vswitch_changes(vswitch, p)
    if not changes:
        return False, vswitch
    if module.check_mode:
        return True, {**vswitch, **changes}
    module.call("vpc", "ModifyVSwitchAttribute", {"RegionId": module.region, "VSwitchId": vswitch["VSwitchId"],
                                                  **changes})
    return True, find_vswitch(module, p["vpc_id"], p["cidr_block"])


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        vpc_id=dict(type="str", required=True),
        cidr_block=dict(type="str", required=True),
        zone=dict(type="str", aliases=["zone_id"]),
        name=dict(type="str", aliases=["vswitch_name"]),
        description=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    ))
    p = module.params
    try:
        ipaddress.IPv4Network(p["cidr_block"])
    except ValueError as err:
        module.fail_json(msg=f"Invalid cidr_block {p['cidr_block']!r}: {err}.")
    module.check_region()
    if p["state"] == "present" and p.get("zone"):
        module.check_zones([p["zone"]])
    before = find_vswitch(module, p["vpc_id"], p["cidr_block"])
    if p["state"] == "absent":
        if before is not None and not module.check_mode:
            module.call("vpc", "DeleteVSwitch", {"RegionId": module.region, "VSwitchId": before["VSwitchId"]},
                        missing_ok=("InvalidVSwitchId.NotFound",))
        module.exit_resource(before is not None, "vswitch", before, None)
    changed, after = ensure_present(module, before)
    module.exit_resource(changed, "vswitch", before, after)


if __name__ == "__main__":
    main()
