#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_vpc
short_description: Manage a VPC
description:
  - Creates, updates (description, CIDR block) and deletes a VPC, found by its name.
  - Deleting fails clearly while vSwitches or security groups remain in the VPC.
options:
  name:
    description: The VPC name; it identifies the VPC (it must be unique in the region).
    type: str
    required: true
    aliases: [vpc_name]
  cidr_block:
    description: The VPC's IPv4 CIDR block (a /8 to /28).
    type: str
    default: 172.16.0.0/12
  description:
    description: The description.
    type: str
  state:
    description: Whether the VPC should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Create the training VPC
  alicloud_vpc:
    name: ess-lora-deepseek7b-vpc
    cidr_block: 172.16.0.0/12
"""

RETURN = r"""
vpc:
  description: The VPC (empty when absent).
  returned: always
  type: dict
  contains:
    vpc_id: {description: The id., type: str, sample: vpc-bp1abc}
    vpc_name: {description: The name., type: str}
    cidr_block: {description: The CIDR block., type: str}
    status: {description: The status., type: str, sample: Available}
"""

import ipaddress  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402


def find_vpc(module: AlicloudModule, name: str) -> dict[str, Any] | None:
    body = module.call("vpc", "DescribeVpcs", {"RegionId": module.region, "VpcName": name, "PageSize": 50}) or {}
    found = [v for v in (body.get("Vpcs") or {}).get("Vpc", []) if v.get("VpcName") == name]
    if len(found) > 1:
        module.fail_json(msg=f"{len(found)} VPCs are named {name}; give each a unique name.")
    return found[0] if found else None


def vpc_changes(vpc: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    if params.get("description") is not None and params["description"] != (vpc.get("Description") or ""):
        changes["Description"] = params["description"]
    if ipaddress.ip_network(params["cidr_block"]) != ipaddress.ip_network(vpc["CidrBlock"]):
        changes["CidrBlock"] = params["cidr_block"]
    return changes


def ensure_present(module: AlicloudModule, vpc: dict[str, Any] | None) -> tuple[bool, Any]:
    p = module.params
    if vpc is None:
        if module.check_mode:
            return True, {"VpcName": p["name"], "CidrBlock": p["cidr_block"], "Description": p.get("description")}
        body = module.call("vpc", "CreateVpc", {"RegionId": module.region, "VpcName": p["name"],
                                                "CidrBlock": p["cidr_block"], "Description": p.get("description")})
        module.wait(lambda: find_vpc(module, p["name"]), lambda v: bool(v) and v.get("Status") == "Available",
                    timeout=120, what=f"the VPC {body['VpcId']} to be Available")
        return True, find_vpc(module, p["name"])
    changes = vpc_changes(vpc, p)
    if not changes:
        return False, vpc
    if module.check_mode:
        return True, {**vpc, **changes}
    module.call("vpc", "ModifyVpcAttribute", {"RegionId": module.region, "VpcId": vpc["VpcId"], **changes})
    return True, find_vpc(module, p["name"])


def ensure_absent(module: AlicloudModule, vpc: dict[str, Any] | None) -> bool:
    if vpc is None:
        return False
    if not module.check_mode:
        module.call("vpc", "DeleteVpc", {"RegionId": module.region, "VpcId": vpc["VpcId"]},
                    missing_ok=("InvalidVpcID.NotFound", "InvalidVpcId.NotFound", "Forbbiden.VpcNotFound"))
    return True


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        name=dict(type="str", required=True, aliases=["vpc_name"]),
        cidr_block=dict(type="str", default="172.16.0.0/12"),
        description=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    ))
    try:
        ipaddress.IPv4Network(module.params["cidr_block"])
    except ValueError as err:
        module.fail_json(msg=f"Invalid cidr_block {module.params['cidr_block']!r}: {err}.")
    module.check_region()
    before = find_vpc(module, module.params["name"])
    if module.params["state"] == "absent":
        module.exit_resource(ensure_absent(module, before), "vpc", before, None)
    changed, after = ensure_present(module, before)
    module.exit_resource(changed, "vpc", before, after)


if __name__ == "__main__":
    main()
