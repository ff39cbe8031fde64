#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_security_group
short_description: Manage a VPC security group and its inbound rules
description:
  - Creates and deletes a security group, found by its VPC and name, and makes its inbound rules
    the ones listed; rules not listed are revoked unless O(purge_rules=false).
  - Rules are compared by protocol, port range, source CIDR, policy and priority.
options:
  name:
    description: The group name; with O(vpc_id) it identifies the group.
    type: str
    required: true
    aliases: [security_group_name]
  vpc_id:
    description: The VPC of the group.
    type: str
    required: true
  description:
    description: The description (set at creation).
    type: str
  rules:
    description: Inbound rules.
    type: list
    elements: dict
    default: []
    suboptions:
      ip_protocol:
        description: The protocol.
        type: str
        required: true
        choices: [tcp, udp, icmp, gre, all]
      port_range:
        description: C(start/end) (for example C(22/22)); V(-1/-1) for icmp, gre and all.
        type: str
      source_cidr_ip:
        description: The source CIDR block.
        type: str
        default: 0.0.0.0/0
      policy:
        description: Accept or drop.
        type: str
        choices: [accept, drop]
        default: accept
      priority:
        description: 1 (highest) to 100.
        type: int
        default: 1
      description:
        description: The rule's description (not compared).
        type: str
  purge_rules:
    description: Revoke inbound rules that O(rules) does not list.
    type: bool
    default: true
  state:
    description: Whether the group should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Create the security group of the training instances (SSH and ICMP, as the seed)
  alicloud_security_group:
    name: ess-lora-deepseek7b-sg
    vpc_id: "{{ vpc.vpc.vpc_id }}"
    rules:
      - {ip_protocol: tcp, port_range: 22/22, source_cidr_ip: 0.0.0.0/0}
      - {ip_protocol: icmp, source_cidr_ip: 0.0.0.0/0}
"""

RETURN = r"""
security_group:
  description: The group (empty when absent).
  returned: always
  type: dict
  contains:
    security_group_id: {description: The id., type: str, sample: sg-bp1abc}
    security_group_name: {description: The name., type: str}
    vpc_id: {description: The VPC., type: str}
    rules: {description: The inbound rules., type: list, elements: dict}
"""

import ipaddress  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_ecs import SECURITY_GROUP_GONE  # noqa: E402

PORTLESS = ("icmp", "gre", "all")


def find_group(module: AlicloudModule, vpc_id: str, name: str) -> dict[str, Any] | None:
    body = module.call("ecs", "DescribeSecurityGroups", {"RegionId": module.region, "VpcId": vpc_id,
                                                         "SecurityGroupName": name, "PageSize": 50}) or {}
    found = [g for g in (body.get("SecurityGroups") or {}).get("SecurityGroup", [])
             if g.get("SecurityGroupName") == name and g.get("VpcId") == vpc_id]
    if not found:
        return None
    group = dict(found[0])
    group["Rules"] = ingress_rules(module, group["SecurityGroupId"])
    return group


def ingress_rules(module: AlicloudModule, group_id: str) -> list[dict[str, Any]]:
    body = module.call("ecs", "DescribeSecurityGroupAttribute", {
        "RegionId": module.region, "SecurityGroupId": group_id, "Direction": "ingress"},
        missing_ok=SECURITY_GROUP_GONE) or {}
    return [r for r in (body.get("Permissions") or {}).get("Permission", []) if r.get("Direction", "ingress") ==
            "ingress"]


def rule_key(rule: dict[str, Any]) -> tuple[str, str, str, str, int]:
    """What makes two rules the same, from either the options (snake) or the API (Camel)."""
    protocol = str(rule.get("ip_protocol") or rule.get("IpProtocol")).lower()
    ports = rule.get("port_range") or rule.get("PortRange") or "-1/-1"
    if protocol in PORTLESS:
        ports = "-1/-1"
    cidr = rule.get("source_cidr_ip") or rule.get("SourceCidrIp") or ""
    cidr = str(ipaddress.ip_network(cidr, strict=False)) if cidr else ""
    policy = str(rule.get("policy") or rule.get("Policy") or "accept").lower()
    priority = int(rule.get("priority") or rule.get("Priority") or 1)
    return protocol, ports, cidr, policy, priority


def plan_rules(current: list[dict[str, Any]], wanted: list[dict[str, Any]],
               purge: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rules to authorize (from the options) and rules to revoke (from the API)."""
    have = {rule_key(r) for r in current}
    want = {rule_key(r) for r in wanted}
    to_add = [r for r in wanted if rule_key(r) not in have]
    to_revoke = [r for r in current if rule_key(r) not in want] if purge else []
    return to_add, to_revoke


def rule_params(rule: dict[str, Any]) -> dict[str, Any]:
    protocol, ports, cidr, policy, priority = rule_key(rule)
    return {"IpProtocol": protocol, "PortRange": ports, "SourceCidrIp": cidr, "Policy": policy,
            "Priority": str(priority), "Description": rule.get("description")}


def update_rules(module: AlicloudModule, group: dict[str, Any]) -> bool:
    to_add, to_revoke = plan_rules(group.get("Rules", []), module.params["rules"], module.params["purge_rules"])
    if not (to_add or to_revoke):
        return False
    if module.check_mode:
        return True
    for rule in to_add:
        module.call("ecs", "AuthorizeSecurityGroup", {"RegionId": module.region,
                                                      "SecurityGroupId": group["SecurityGroupId"], **rule_params(rule)})
    for rule in to_revoke:
        params = {"RegionId": module.region, "SecurityGroupId": group["SecurityGroupId"]}
        if rule.get("SecurityGroupRuleId"):
            params["SecurityGroupRuleId"] = [rule["SecurityGroupRuleId"]]
        else:
            params.update(rule_params(rule))
        module.call("ecs", "RevokeSecurityGroup", params)
    return True


def ensure_present(module: AlicloudModule, group: dict[str, Any] | None) -> tuple[bool, Any]:
    p = module.params
    if group is None:
        module.require_vpc(p["vpc_id"])
        if module.check_mode:
            return True, {"SecurityGroupName": p["name"], "VpcId": p["vpc_id"],
                          "Rules": [rule_params(r) for r in p["rules"]]}
        module.call("ecs", "CreateSecurityGroup", {"RegionId": module.region, "VpcId": p["vpc_id"],
                                                   "SecurityGroupName": p["name"],
                                                   "Description": p.get("description"),
                                                   "SecurityGroupType": "normal"})
        update_rules(module, find_group(module, p["vpc_id"], p["name"]))
        return True, find_group(module, p["vpc_id"], p["name"])
    if not update_rules(module, group):
        return False, group
    if module.check_mode:
        return True, {**group, "Rules": [rule_params(r) for r in p["rules"]]}
    return True, find_group(module, p["vpc_id"], p["name"])


def ensure_absent(module: AlicloudModule, group: dict[str, Any] | None) -> bool:
    if group is None:
        return False
    if not module.check_mode:
        module.call("ecs", "DeleteSecurityGroup", {"RegionId": module.region,
                                                   "SecurityGroupId": group["SecurityGroupId"]},
                    missing_ok=SECURITY_GROUP_GONE)
    return True


def main() -> None:
    rule_spec = dict(
        ip_protocol=dict(type="str", required=True, choices=["tcp", "udp", "icmp", "gre", "all"]),
        port_range=dict(type="str"),
        source_cidr_ip=dict(type="str", default="0.0.0.0/0"),
        policy=dict(type="str", default="accept", choices=["accept", "drop"]),
        priority=dict(type="int", default=1),
        description=dict(type="str"),
    )
    module = AlicloudModule(argument_spec=dict(
        name=dict(type="str", required=True, aliases=["security_group_name"]),
        vpc_id=dict(type="str", required=True),
        description=dict(type="str"),
        rules=dict(type="list", elements="dict", default=[], options=rule_spec),
        purge_rules=dict(type="bool", default=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    ))
    p = module.params
    for rule in p["rules"]:
        if rule["ip_protocol"] not in PORTLESS and not rule.get("port_range"):
            module.fail_json(msg=f"A {rule['ip_protocol']} rule needs port_range (for example 22/22).")
        try:
            rule_key(rule)
        except ValueError as err:
            module.fail_json(msg=f"Invalid source_cidr_ip in a rule: {err}.")
    module.check_region()
    before = find_group(module, p["vpc_id"], p["name"])
    if p["state"] == "absent":
        module.exit_resource(ensure_absent(module, before), "security_group", before, None)
    changed, after = ensure_present(module, before)
    module.exit_resource(changed, "security_group", before, after)


if __name__ == "__main__":
    main()
