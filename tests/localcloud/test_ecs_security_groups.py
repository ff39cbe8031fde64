"""ECS security groups and rules through the official SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as m

from .ecs_support import Network, api_error, make_network, run, unique


@pytest.fixture(scope="module")
def ecs(localcloud: Any) -> Any:
    return localcloud.client("ecs")


@pytest.fixture(scope="module")
def net(localcloud: Any) -> Network:
    return make_network(localcloud, cidr="172.16.10.0/24")


def create_group(ecs: Any, cloud: Any, vpc_id: str, **fields: Any) -> str:
    request = m.CreateSecurityGroupRequest(region_id=cloud.region, vpc_id=vpc_id, **fields)
    return ecs.create_security_group(request).body.security_group_id


def rules(ecs: Any, cloud: Any, group_id: str) -> list[Any]:
    body = ecs.describe_security_group_attribute(m.DescribeSecurityGroupAttributeRequest(
        region_id=cloud.region, security_group_id=group_id)).body
    return body.permissions.permission


def test_create_and_describe_a_group(ecs: Any, localcloud: Any, net: Network) -> None:
    name = unique("web")
    group_id = create_group(ecs, localcloud, net.vpc_id, security_group_name=name, description="web tier")
    assert group_id.startswith("sg-")
    body = ecs.describe_security_groups(m.DescribeSecurityGroupsRequest(
        region_id=localcloud.region, security_group_ids=json.dumps([group_id]))).body
    assert body.total_count == 1
    group = body.security_groups.security_group[0]
    assert (group.security_group_name, group.description, group.vpc_id, group.security_group_type) == (
        name, "web tier", net.vpc_id, "normal")


def test_a_group_needs_an_existing_vpc(ecs: Any, localcloud: Any) -> None:
    err = api_error(ecs.create_security_group, m.CreateSecurityGroupRequest(
        region_id=localcloud.region, vpc_id="vpc-doesnotexist"))
    assert err.code == "InvalidVpcId.NotFound"


def test_filters_by_vpc_and_name_and_pages(ecs: Any, localcloud: Any) -> None:
    other = make_network(localcloud, cidr="172.16.11.0/24")
    made = [create_group(ecs, localcloud, other.vpc_id, security_group_name=f"pg-{n}") for n in range(3)]
    by_vpc = ecs.describe_security_groups(m.DescribeSecurityGroupsRequest(
        region_id=localcloud.region, vpc_id=other.vpc_id, page_size=2, page_number=2)).body
    assert by_vpc.total_count == 4  # the network's own group and the three made here
    assert len(by_vpc.security_groups.security_group) == 2
    by_name = ecs.describe_security_groups(m.DescribeSecurityGroupsRequest(
        region_id=localcloud.region, vpc_id=other.vpc_id, security_group_name="pg-1")).body
    assert [g.security_group_id for g in by_name.security_groups.security_group] == [made[1]]


def test_authorize_is_idempotent_and_revoke_removes(ecs: Any, localcloud: Any, net: Network) -> None:
    group_id = create_group(ecs, localcloud, net.vpc_id)
    ssh = {"region_id": localcloud.region, "security_group_id": group_id, "ip_protocol": "tcp",
           "port_range": "22/22", "source_cidr_ip": "10.0.0.0/8", "policy": "accept", "priority": "1",
           "description": "ssh"}
    ecs.authorize_security_group(m.AuthorizeSecurityGroupRequest(**ssh))
    ecs.authorize_security_group(m.AuthorizeSecurityGroupRequest(**ssh))  # the same rule again: no change
    (rule,) = rules(ecs, localcloud, group_id)
    assert (rule.ip_protocol, rule.port_range, rule.source_cidr_ip, rule.policy, rule.direction) == (
        "TCP", "22/22", "10.0.0.0/8", "Accept", "ingress")
    assert rule.description == "ssh" and rule.security_group_rule_id.startswith("sgr-")
    ecs.revoke_security_group(m.RevokeSecurityGroupRequest(**ssh))
    assert rules(ecs, localcloud, group_id) == []


def test_authorize_with_the_permissions_list(ecs: Any, localcloud: Any, net: Network) -> None:
    group_id = create_group(ecs, localcloud, net.vpc_id)
    ecs.authorize_security_group(m.AuthorizeSecurityGroupRequest(
        region_id=localcloud.region, security_group_id=group_id, permissions=[
            m.AuthorizeSecurityGroupRequestPermissions(ip_protocol="TCP", port_range="80/80",
                                                       source_cidr_ip="0.0.0.0/0"),
            m.AuthorizeSecurityGroupRequestPermissions(ip_protocol="ICMP", port_range="-1/-1",
                                                       source_cidr_ip="0.0.0.0/0", priority="10"),
        ]))
    found = {(r.ip_protocol, r.port_range, r.priority) for r in rules(ecs, localcloud, group_id)}
    assert found == {("TCP", "80/80", "1"), ("ICMP", "-1/-1", "10")}


@pytest.mark.parametrize("port_range", ["22", "0/22", "30/20", "1/70000"])
def test_a_bad_port_range_is_refused(ecs: Any, localcloud: Any, net: Network, port_range: str) -> None:
    err = api_error(ecs.authorize_security_group, m.AuthorizeSecurityGroupRequest(
        region_id=localcloud.region, security_group_id=net.security_group_id, ip_protocol="tcp",
        port_range=port_range, source_cidr_ip="0.0.0.0/0"))
    assert err.code == "InvalidParameter.PortRange"


def test_a_group_in_use_cannot_be_deleted(ecs: Any, localcloud: Any, net: Network) -> None:
    group_id = create_group(ecs, localcloud, net.vpc_id)
    (instance_id,) = run(localcloud, net, security_group_id=group_id)
    err = api_error(ecs.delete_security_group, m.DeleteSecurityGroupRequest(
        region_id=localcloud.region, security_group_id=group_id))
    assert (err.code, err.status_code) == ("DependencyViolation", 403)
    ecs.delete_instance(m.DeleteInstanceRequest(instance_id=instance_id, force=True))
    ecs.delete_security_group(m.DeleteSecurityGroupRequest(region_id=localcloud.region, security_group_id=group_id))
    err = api_error(ecs.describe_security_group_attribute, m.DescribeSecurityGroupAttributeRequest(
        region_id=localcloud.region, security_group_id=group_id))
    assert err.code == "InvalidSecurityGroupId.NotFound"


def test_a_group_referenced_by_another_cannot_be_deleted(ecs: Any, localcloud: Any, net: Network) -> None:
    target = create_group(ecs, localcloud, net.vpc_id)
    source = create_group(ecs, localcloud, net.vpc_id)
    ecs.authorize_security_group(m.AuthorizeSecurityGroupRequest(
        region_id=localcloud.region, security_group_id=target, ip_protocol="all", port_range="-1/-1",
        source_group_id=source))
    err = api_error(ecs.delete_security_group, m.DeleteSecurityGroupRequest(
        region_id=localcloud.region, security_group_id=source))
    assert err.code == "DependencyViolation"
