"""ECS: security groups and their rules (`network.SECURITY_GROUP` records).

Each record keeps its VpcId (the VPC module reads it) and its rules under `Permissions`. Rules are
recorded, not enforced: instances on localcloud are not firewalled.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from .. import ids, instances, network
from ..clock import iso_seconds
from ..errors import ApiError, invalid, missing
from ..params import Params
from ..registry import Request, action
from .ecs_common import Record, dry_run, id_list, matches_tags, page, render_tags, tags_param

if TYPE_CHECKING:
    from ..cloud import Cloud

PROTOCOLS = ("TCP", "UDP", "ICMP", "ICMPV6", "GRE", "ALL")
# Fields that make two rules the same rule (a second Authorize with them changes nothing).
RULE_IDENTITY = ("Direction", "IpProtocol", "PortRange", "SourceCidrIp", "SourceGroupId", "DestCidrIp",
                 "DestGroupId", "Policy", "Priority", "NicType", "SourcePortRange")


def get_group(cloud: Cloud, group_id: str | None) -> Record:
    if not group_id:
        raise missing("SecurityGroupId")
    group = network.SECURITY_GROUP.find(cloud.store, group_id)
    if group is None:
        raise ApiError("InvalidSecurityGroupId.NotFound", f"The specified security group {group_id} does not "
                       "exist.", 404)
    return group


def instances_in(cloud: Cloud, group_id: str) -> list[Record]:
    return instances.in_security_group(cloud.store, group_id)


@action("ecs", "CreateSecurityGroup")
def create_security_group(cloud: Cloud, req: Request) -> dict:
    p = req.params
    vpc_id = p.str("VpcId")
    if not vpc_id:
        # Classic-network security groups do not exist on localcloud: every instance lives in a VPC.
        raise ApiError("MissingParameter.VpcId", "Specify VpcId: localcloud has only VPC security groups.")
    if network.VPC.find(cloud.store, vpc_id) is None:
        raise ApiError("InvalidVpcId.NotFound", f"The specified VPC {vpc_id} does not exist.", 404)
    name = p.str("SecurityGroupName", "")
    if name and (len(name) < 2 or len(name) > 128 or name.startswith(("http://", "https://"))):
        raise invalid("SecurityGroupName", "It must be 2 to 128 characters and not start with http:// or "
                      "https://.")
    group_type = p.str("SecurityGroupType", "normal", choices=("normal", "enterprise"))
    tags = tags_param(p)
    dry_run(p)
    group_id = ids.new_id("sg", cloud.settings.region)
    now = cloud.clock.now()
    network.SECURITY_GROUP.save(cloud.store, {
        "SecurityGroupId": group_id, "SecurityGroupName": name, "Description": p.str("Description", ""),
        "SecurityGroupType": group_type, "VpcId": vpc_id, "RegionId": cloud.settings.region,
        "CreationTime": iso_seconds(now), "Tags": tags, "Permissions": [],
    })
    return {"SecurityGroupId": group_id}


def _matches_filters(group: Record, p: Params, wanted_ids: list[str]) -> bool:
    if wanted_ids and group["SecurityGroupId"] not in wanted_ids:
        return False
    for field in ("VpcId", "SecurityGroupName", "SecurityGroupType"):
        value = p.str(field)
        if value and group.get(field) != value:
            return False
    return matches_tags(group, p.tags("Tag"))


def _render_group(cloud: Cloud, group: Record) -> dict[str, Any]:
    ecs_count = len(instances_in(cloud, group["SecurityGroupId"]))
    return {
        "SecurityGroupId": group["SecurityGroupId"], "SecurityGroupName": group["SecurityGroupName"],
        "Description": group["Description"], "SecurityGroupType": group["SecurityGroupType"],
        "VpcId": group["VpcId"], "CreationTime": group["CreationTime"], "Tags": render_tags(group),
        "EcsCount": ecs_count, "AvailableInstanceAmount": max(0, 2000 - ecs_count),
        "RuleCount": len(group["Permissions"]), "ServiceManaged": False, "ResourceGroupId": "",
        "GroupToGroupRuleCount": sum(1 for r in group["Permissions"] if r.get("SourceGroupId")),
    }


@action("ecs", "DescribeSecurityGroups")
def describe_security_groups(cloud: Cloud, req: Request) -> dict:
    p = req.params
    dry_run(p)
    wanted = id_list(p, "SecurityGroupIds") + ([p.str("SecurityGroupId")] if p.str("SecurityGroupId") else [])
    groups = [g for g in network.SECURITY_GROUP.all(cloud.store) if _matches_filters(g, p, wanted)]
    chunk, paging = page(p, groups, default_size=10, max_size=50)
    return {"RegionId": cloud.settings.region, **paging,
            "SecurityGroups": {"SecurityGroup": [_render_group(cloud, g) for g in chunk]}}


def _render_rule(rule: Record) -> dict[str, Any]:
    rendered = {k: rule.get(k, "") for k in (
        "SecurityGroupRuleId", "Direction", "IpProtocol", "PortRange", "SourceCidrIp", "SourceGroupId",
        "DestCidrIp", "DestGroupId", "Policy", "Priority", "NicType", "Description", "CreateTime",
        "SourcePortRange", "Ipv6SourceCidrIp", "Ipv6DestCidrIp", "SourcePrefixListId", "DestPrefixListId",
    )}
    rendered["Priority"] = str(rule["Priority"])
    return rendered


@action("ecs", "DescribeSecurityGroupAttribute")
def describe_security_group_attribute(cloud: Cloud, req: Request) -> dict:
    p = req.params
    group = get_group(cloud, p.str("SecurityGroupId", required=True))
    direction = p.str("Direction", "all", choices=("all", "ingress", "egress"))
    rules = [r for r in group["Permissions"] if direction == "all" or r["Direction"] == direction]
    return {
        "RegionId": cloud.settings.region, "SecurityGroupId": group["SecurityGroupId"],
        "SecurityGroupName": group["SecurityGroupName"], "Description": group["Description"],
        "VpcId": group["VpcId"], "InnerAccessPolicy": "Accept",
        "Permissions": {"Permission": [_render_rule(r) for r in rules]},
    }


def _port_range(protocol: str, value: str | None, name: str) -> str:
    if protocol in ("ICMP", "ICMPV6", "GRE", "ALL"):
        # Alibaba fixes the range of port-less protocols to -1/-1.
        if value not in (None, "", "-1/-1"):
            raise invalid(name, f"For {protocol} the port range must be -1/-1.")
        return "-1/-1"
    if not value:
        raise missing(name)
    low, sep, high = value.partition("/")
    try:
        start, end = int(low), int(high)
    except ValueError:
        raise invalid(name, "Use the form start/end, e.g. 22/22.") from None
    if not sep or not 1 <= start <= end <= 65535:
        raise invalid(name, "Use the form start/end with 1 <= start <= end <= 65535, e.g. 22/22.")
    return f"{start}/{end}"


def _cidr(value: str | None, name: str) -> str:
    if not value:
        return ""
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise invalid(name, "It must be an IPv4 address or CIDR block, e.g. 10.0.0.0/8.") from None


def _rule_from(cloud: Cloud, fields: dict[str, str], direction: str) -> Record:
    """Validate one rule given as request fields (top level or one `Permissions.N`)."""
    p = Params(fields)
    protocol = (p.str("IpProtocol", required=True) or "").upper()
    if protocol not in PROTOCOLS:
        raise invalid("IpProtocol", f"Valid values: {', '.join(PROTOCOLS)}.")
    policy = (p.str("Policy", "accept") or "accept").lower()
    if policy not in ("accept", "drop"):
        raise invalid("Policy", "Valid values: accept, drop.")
    rule: Record = {
        "Direction": direction, "IpProtocol": protocol,
        "PortRange": _port_range(protocol, p.str("PortRange"), "PortRange"),
        "SourceCidrIp": _cidr(p.str("SourceCidrIp"), "SourceCidrIp"),
        "DestCidrIp": _cidr(p.str("DestCidrIp"), "DestCidrIp"),
        "SourceGroupId": p.str("SourceGroupId", "") if direction == "ingress" else "",
        "DestGroupId": p.str("DestGroupId", "") if direction == "egress" else "",
        "Policy": policy.capitalize(), "Priority": p.int("Priority", 1, minimum=1, maximum=100),
        "NicType": p.str("NicType", "intranet"), "Description": p.str("Description", ""),
        "SourcePortRange": p.str("SourcePortRange", ""),
    }
    peer_group = rule["SourceGroupId"] or rule["DestGroupId"]
    if peer_group:
        get_group(cloud, peer_group)
    peer_cidr = rule["SourceCidrIp"] if direction == "ingress" else rule["DestCidrIp"]
    if not peer_cidr and not peer_group:
        side = "SourceCidrIp or SourceGroupId" if direction == "ingress" else "DestCidrIp or DestGroupId"
        raise ApiError("MissingParameter", f"A rule needs a peer: specify {side}.")
    return rule


def _rules_from_request(cloud: Cloud, p: Params, direction: str) -> list[Record]:
    """The top-level rule fields and every `Permissions.N.*` rule, as the SDK offers both."""
    given = [fields for fields in p.objects("Permissions") if fields]
    if p.str("IpProtocol"):
        given.insert(0, {k: v for k, v in p.raw.items() if "." not in k})
    if not given:
        raise missing("IpProtocol")
    return [_rule_from(cloud, fields, direction) for fields in given]


def _same_rule(a: Record, b: Record) -> bool:
    return all(a.get(k, "") == b.get(k, "") for k in RULE_IDENTITY)


def _authorize(cloud: Cloud, req: Request, direction: str) -> dict:
    p = req.params
    group = get_group(cloud, p.str("SecurityGroupId", required=True))
    rules = _rules_from_request(cloud, p, direction)
    now = iso_seconds(cloud.clock.now())
    for rule in rules:
        if any(_same_rule(rule, existing) for existing in group["Permissions"]):
            continue  # Alibaba accepts a duplicate rule and changes nothing
        group["Permissions"].append({**rule, "SecurityGroupRuleId": ids.new_id("sgr", cloud.settings.region),
                                     "CreateTime": now})
    network.SECURITY_GROUP.save(cloud.store, group)
    return {}


def _revoke(cloud: Cloud, req: Request, direction: str) -> dict:
    p = req.params
    group = get_group(cloud, p.str("SecurityGroupId", required=True))
    rule_ids = set(p.list("SecurityGroupRuleId"))
    if rule_ids:
        group["Permissions"] = [r for r in group["Permissions"] if r["SecurityGroupRuleId"] not in rule_ids]
    else:
        rules = _rules_from_request(cloud, p, direction)
        # Revoking a rule that is not there is not an error, as on Alibaba.
        group["Permissions"] = [r for r in group["Permissions"] if not any(_same_rule(r, x) for x in rules)]
    network.SECURITY_GROUP.save(cloud.store, group)
    return {}


@action("ecs", "AuthorizeSecurityGroup")
def authorize_security_group(cloud: Cloud, req: Request) -> dict:
    return _authorize(cloud, req, "ingress")


@action("ecs", "AuthorizeSecurityGroupEgress")
def authorize_security_group_egress(cloud: Cloud, req: Request) -> dict:
    return _authorize(cloud, req, "egress")


@action("ecs", "RevokeSecurityGroup")
def revoke_security_group(cloud: Cloud, req: Request) -> dict:
    return _revoke(cloud, req, "ingress")


@action("ecs", "RevokeSecurityGroupEgress")
def revoke_security_group_egress(cloud: Cloud, req: Request) -> dict:
    return _revoke(cloud, req, "egress")


@action("ecs", "DeleteSecurityGroup")
def delete_security_group(cloud: Cloud, req: Request) -> dict:
    group = get_group(cloud, req.params.str("SecurityGroupId", required=True))
    group_id = group["SecurityGroupId"]
    if instances_in(cloud, group_id):
        raise ApiError("DependencyViolation", f"There is still instance(s) in the specified security group "
                       f"{group_id}. Release them or move them to another group first.", 403)
    referencing = [g["SecurityGroupId"] for g in network.SECURITY_GROUP.all(cloud.store)
                   if g["SecurityGroupId"] != group_id
                   and any(group_id in (r.get("SourceGroupId"), r.get("DestGroupId")) for r in g["Permissions"])]
    if referencing:
        raise ApiError("DependencyViolation", f"The specified security group {group_id} has been authorized in "
                       f"another one ({', '.join(referencing)}). Revoke those rules first.", 403)
    network.SECURITY_GROUP.delete(cloud.store, group_id)
    return {}
