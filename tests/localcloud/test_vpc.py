"""VPCs, vSwitches and zones through the official VPC SDK."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models

from localcloud.store import Store

ZONE = "cn-hangzhou-h"


def api_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ClientException:
    with pytest.raises(ClientException) as info:
        call(*args, **kwargs)
    return info.value


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def vpc(localcloud: Any) -> Any:
    return localcloud.client("vpc")


@pytest.fixture
def region(localcloud: Any) -> str:
    return localcloud.region


@pytest.fixture
def make_vpc(vpc: Any, region: str) -> Callable[..., str]:
    def create(**fields: Any) -> str:
        return vpc.create_vpc(vpc_models.CreateVpcRequest(region_id=region, **fields)).body.vpc_id
    return create


@pytest.fixture
def make_vswitch(vpc: Any, region: str) -> Callable[..., str]:
    def create(vpc_id: str, cidr: str, zone: str = ZONE, **fields: Any) -> str:
        return vpc.create_vswitch(vpc_models.CreateVSwitchRequest(
            region_id=region, vpc_id=vpc_id, cidr_block=cidr, zone_id=zone, **fields)).body.v_switch_id
    return create


def describe_vpc(vpc: Any, region: str, vpc_id: str) -> Any:
    found = vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=region, vpc_id=vpc_id)).body.vpcs.vpc
    assert len(found) == 1
    return found[0]


def describe_vswitches(vpc: Any, region: str, **filters: Any) -> Any:
    return vpc.describe_vswitches(vpc_models.DescribeVSwitchesRequest(region_id=region, **filters)).body


@contextmanager
def stored(localcloud: Any, kind: str, key: str, record: dict[str, Any]) -> Iterator[None]:
    """A record other products own (security groups, instances, scaling groups), for as long as the block."""
    store = Store(localcloud.state_dir / "state.db")
    try:
        with store.transaction():
            store.put(kind, key, record)
        yield
    finally:
        with store.transaction():
            store.delete(kind, key)
        store.close()


# -- VPCs ------------------------------------------------------------------------------------
def test_create_vpc_with_the_default_cidr(vpc: Any, region: str) -> None:
    body = vpc.create_vpc(vpc_models.CreateVpcRequest(region_id=region)).body
    assert body.vpc_id.startswith("vpc-") and body.vrouter_id.startswith("vrt-")
    assert body.route_table_id.startswith("vtb-")
    found = describe_vpc(vpc, region, body.vpc_id)
    assert (found.cidr_block, found.status, found.region_id) == ("172.16.0.0/12", "Available", region)
    assert found.v_switch_ids.v_switch_id == []
    assert found.creation_time.endswith("Z")


def test_create_vpc_keeps_name_description_and_cidr(vpc: Any, region: str, make_vpc: Callable[..., str]) -> None:
    name = unique("train")
    vpc_id = make_vpc(cidr_block="192.168.0.0/16", vpc_name=name, description="training network")
    found = describe_vpc(vpc, region, vpc_id)
    assert (found.vpc_name, found.description, found.cidr_block) == (name, "training network", "192.168.0.0/16")
    attribute = vpc.describe_vpc_attribute(vpc_models.DescribeVpcAttributeRequest(
        region_id=region, vpc_id=vpc_id)).body
    assert (attribute.vpc_name, attribute.status) == (name, "Available")


@pytest.mark.parametrize(("fields", "code"), [
    ({"cidr_block": "10.0.0.1/8"}, "InvalidCidrBlock.Malformed"),
    ({"cidr_block": "10.0.0.0/30"}, "InvalidCidrBlock.Malformed"),
    ({"vpc_name": "1starts-with-a-digit"}, "InvalidVpcName.Malformed"),
    ({"description": "http://example.com"}, "InvalidDescription.Malformed"),
])
def test_create_vpc_validates_its_parameters(make_vpc: Callable[..., str], fields: dict[str, Any],
                                             code: str) -> None:
    err = api_error(make_vpc, **fields)
    assert (err.code, err.status_code) == (code, 400)


def test_create_vpc_with_a_client_token_is_idempotent(make_vpc: Callable[..., str]) -> None:
    token = uuid.uuid4().hex
    assert make_vpc(client_token=token) == make_vpc(client_token=token)
    assert make_vpc(client_token=uuid.uuid4().hex) != make_vpc(client_token=uuid.uuid4().hex)


def test_describe_vpcs_filters_by_name_and_pages(vpc: Any, region: str, make_vpc: Callable[..., str]) -> None:
    name = unique("paged")
    created = [make_vpc(vpc_name=name) for _ in range(3)]
    make_vpc(vpc_name=unique("other"))

    def page(number: int) -> Any:
        return vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(
            region_id=region, vpc_name=name, page_number=number, page_size=2)).body

    first, second = page(1), page(2)
    assert (first.total_count, first.page_number, first.page_size) == (3, 1, 2)
    assert [v.vpc_id for v in first.vpcs.vpc + second.vpcs.vpc] == created
    assert page(3).vpcs.vpc == []


def test_describe_vpcs_by_several_ids(vpc: Any, region: str, make_vpc: Callable[..., str]) -> None:
    ids = [make_vpc(), make_vpc()]
    found = vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=region, vpc_id=",".join(ids))).body
    assert sorted(v.vpc_id for v in found.vpcs.vpc) == sorted(ids)
    missing = vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=region, vpc_id="vpc-nothere")).body
    assert (missing.total_count, missing.vpcs.vpc) == (0, [])


def test_describe_vpcs_rejects_a_page_size_over_fifty(vpc: Any, region: str) -> None:
    err = api_error(vpc.describe_vpcs, vpc_models.DescribeVpcsRequest(region_id=region, page_size=51))
    assert (err.code, err.status_code) == ("InvalidParameter.PageSize", 400)


def test_modify_vpc_attribute(vpc: Any, region: str, make_vpc: Callable[..., str]) -> None:
    vpc_id = make_vpc(vpc_name=unique("before"))
    vpc.modify_vpc_attribute(vpc_models.ModifyVpcAttributeRequest(
        region_id=region, vpc_id=vpc_id, vpc_name="after", description="renamed"))
    found = describe_vpc(vpc, region, vpc_id)
    assert (found.vpc_name, found.description) == ("after", "renamed")


def test_a_vpc_in_a_request_for_another_region_is_refused(vpc: Any) -> None:
    err = api_error(vpc.describe_vpcs, vpc_models.DescribeVpcsRequest(region_id="eu-central-1"))
    assert (err.code, err.status_code) == ("InvalidRegionId.NotFound", 404)


def test_delete_vpc(vpc: Any, region: str, make_vpc: Callable[..., str]) -> None:
    vpc_id = make_vpc()
    vpc.delete_vpc(vpc_models.DeleteVpcRequest(region_id=region, vpc_id=vpc_id))
    found = vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=region, vpc_id=vpc_id)).body
    assert found.vpcs.vpc == []
    err = api_error(vpc.delete_vpc, vpc_models.DeleteVpcRequest(region_id=region, vpc_id=vpc_id))
    assert (err.code, err.status_code) == ("InvalidVpcId.NotFound", 404)


def test_delete_vpc_is_refused_while_it_has_vswitches(
        vpc: Any, region: str, make_vpc: Callable[..., str], make_vswitch: Callable[..., str]) -> None:
    vpc_id = make_vpc(cidr_block="10.0.0.0/16")
    vswitch_id = make_vswitch(vpc_id, "10.0.1.0/24")
    err = api_error(vpc.delete_vpc, vpc_models.DeleteVpcRequest(region_id=region, vpc_id=vpc_id))
    assert (err.code, err.status_code) == ("DependencyViolation.VSwitch", 400)
    vpc.delete_vswitch(vpc_models.DeleteVSwitchRequest(region_id=region, v_switch_id=vswitch_id))
    vpc.delete_vpc(vpc_models.DeleteVpcRequest(region_id=region, vpc_id=vpc_id))


def test_delete_vpc_is_refused_while_it_has_security_groups(
        localcloud: Any, vpc: Any, region: str, make_vpc: Callable[..., str]) -> None:
    vpc_id = make_vpc()
    group = {"SecurityGroupId": "sg-vpctest", "VpcId": vpc_id, "SecurityGroupName": "test"}
    with stored(localcloud, "security_group", "sg-vpctest", group):
        err = api_error(vpc.delete_vpc, vpc_models.DeleteVpcRequest(region_id=region, vpc_id=vpc_id))
    assert (err.code, err.status_code) == ("DependencyViolation.SecurityGroup", 400)
    vpc.delete_vpc(vpc_models.DeleteVpcRequest(region_id=region, vpc_id=vpc_id))


# -- vSwitches -------------------------------------------------------------------------------
def test_create_vswitch_and_describe_it(
        vpc: Any, region: str, make_vpc: Callable[..., str], make_vswitch: Callable[..., str]) -> None:
    vpc_id = make_vpc(cidr_block="10.1.0.0/16")
    name = unique("subnet")
    vswitch_id = make_vswitch(vpc_id, "10.1.2.0/24", v_switch_name=name, description="GPU subnet")
    assert vswitch_id.startswith("vsw-")
    found = describe_vswitches(vpc, region, v_switch_id=vswitch_id).v_switches.v_switch
    assert len(found) == 1
    vswitch = found[0]
    assert (vswitch.vpc_id, vswitch.zone_id, vswitch.cidr_block) == (vpc_id, ZONE, "10.1.2.0/24")
    assert (vswitch.v_switch_name, vswitch.description, vswitch.status) == (name, "GPU subnet", "Available")
    assert vswitch.available_ip_address_count == 256 - 4
    assert describe_vpc(vpc, region, vpc_id).v_switch_ids.v_switch_id == [vswitch_id]
    attributes = vpc.describe_vswitch_attributes(vpc_models.DescribeVSwitchAttributesRequest(
        region_id=region, v_switch_id=vswitch_id)).body
    assert (attributes.vpc_id, attributes.status) == (vpc_id, "Available")


def test_describe_vswitches_filters_by_vpc_and_zone_and_pages(
        vpc: Any, region: str, make_vpc: Callable[..., str], make_vswitch: Callable[..., str]) -> None:
    vpc_id = make_vpc(cidr_block="10.2.0.0/16")
    in_h = [make_vswitch(vpc_id, f"10.2.{i}.0/24", "cn-hangzhou-h") for i in range(3)]
    in_i = make_vswitch(vpc_id, "10.2.10.0/24", "cn-hangzhou-i")
    everything = describe_vswitches(vpc, region, vpc_id=vpc_id)
    assert everything.total_count == 4
    zone_h = describe_vswitches(vpc, region, vpc_id=vpc_id, zone_id="cn-hangzhou-h", page_size=2, page_number=2)
    assert (zone_h.total_count, [v.v_switch_id for v in zone_h.v_switches.v_switch]) == (3, in_h[2:])
    zone_i = describe_vswitches(vpc, region, vpc_id=vpc_id, zone_id="cn-hangzhou-i")
    assert [v.v_switch_id for v in zone_i.v_switches.v_switch] == [in_i]


@pytest.mark.parametrize(("cidr", "code"), [
    ("10.3.1.0/24", "InvalidCidrBlock.Overlapped"),
    ("10.3.0.0/16", "InvalidCidrBlock.Overlapped"),
    ("10.4.0.0/24", "InvalidParameter"),
    ("10.3.9.0/30", "InvalidCidrBlock.Malformed"),
    ("not-a-cidr", "InvalidCidrBlock.Malformed"),
])
def test_create_vswitch_refuses_a_bad_or_taken_cidr(
        make_vpc: Callable[..., str], make_vswitch: Callable[..., str], cidr: str, code: str) -> None:
    vpc_id = make_vpc(cidr_block="10.3.0.0/16")
    make_vswitch(vpc_id, "10.3.1.0/24")
    err = api_error(make_vswitch, vpc_id, cidr)
    assert (err.code, err.status_code) == (code, 400)


def test_create_vswitch_in_an_unknown_zone_or_vpc_is_not_found(
        make_vpc: Callable[..., str], make_vswitch: Callable[..., str]) -> None:
    vpc_id = make_vpc(cidr_block="10.5.0.0/16")
    err = api_error(make_vswitch, vpc_id, "10.5.1.0/24", "cn-hangzhou-z")
    assert (err.code, err.status_code) == ("InvalidZoneId.NotFound", 404)
    err = api_error(make_vswitch, "vpc-nothere", "10.5.1.0/24")
    assert (err.code, err.status_code) == ("InvalidVpcId.NotFound", 404)


def test_delete_vswitch(vpc: Any, region: str, make_vpc: Callable[..., str],
                        make_vswitch: Callable[..., str]) -> None:
    vswitch_id = make_vswitch(make_vpc(cidr_block="10.6.0.0/16"), "10.6.1.0/24")
    vpc.delete_vswitch(vpc_models.DeleteVSwitchRequest(region_id=region, v_switch_id=vswitch_id))
    assert describe_vswitches(vpc, region, v_switch_id=vswitch_id).total_count == 0
    err = api_error(vpc.delete_vswitch, vpc_models.DeleteVSwitchRequest(region_id=region, v_switch_id=vswitch_id))
    assert (err.code, err.status_code) == ("InvalidVSwitchId.NotFound", 404)


@pytest.mark.parametrize(("kind", "key", "record"), [
    ("instance", "i-vpctest", {"InstanceId": "i-vpctest", "Status": "Running", "OperationLocks": [],
                               "ReclaimAt": None, "ZoneId": ZONE, "InstanceType": "ecs.g7.large",
                               "SpotStrategy": "NoSpot"}),
    ("scaling_group", "asg-vpctest", {"ScalingGroupId": "asg-vpctest", "LifecycleState": "Inactive"}),
])
def test_delete_vswitch_is_refused_while_something_uses_it(
        localcloud: Any, vpc: Any, region: str, make_vpc: Callable[..., str], make_vswitch: Callable[..., str],
        kind: str, key: str, record: dict[str, Any]) -> None:
    vswitch_id = make_vswitch(make_vpc(cidr_block="10.7.0.0/16"), "10.7.1.0/24")
    user = {**record, "VSwitchId": vswitch_id, "VSwitchIds": [vswitch_id]}
    with stored(localcloud, kind, key, user):
        err = api_error(vpc.delete_vswitch, vpc_models.DeleteVSwitchRequest(region_id=region,
                                                                            v_switch_id=vswitch_id))
    assert (err.code, err.status_code) == ("DependencyViolation", 400)
    vpc.delete_vswitch(vpc_models.DeleteVSwitchRequest(region_id=region, v_switch_id=vswitch_id))


# -- zones -----------------------------------------------------------------------------------
def test_describe_zones_lists_the_regions_zones(vpc: Any, region: str) -> None:
    zones = vpc.describe_zones(vpc_models.DescribeZonesRequest(region_id=region)).body.zones.zone
    assert ZONE in {z.zone_id for z in zones}
    assert all(z.zone_type == "AvailabilityZone" for z in zones)
