"""ECS instances through the official SDK: launch, describe, lifecycle, roles, tags."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as m

from .ecs_support import (
    ECS_TRUST,
    GPU_TYPE,
    SMALL_TYPE,
    SYSTEM_IMAGE,
    Network,
    api_error,
    describe,
    describe_one,
    make_network,
    make_role,
    raw_ecs_call,
    run,
    run_request,
    unique,
    wait_status,
)


@pytest.fixture(scope="module")
def ecs(localcloud: Any) -> Any:
    return localcloud.client("ecs")


@pytest.fixture(scope="module")
def net(localcloud: Any) -> Network:
    return make_network(localcloud, cidr="172.16.20.0/24")


def test_run_instances_shows_the_full_instance(ecs: Any, localcloud: Any, net: Network) -> None:
    role = make_role(localcloud)
    (instance_id,) = run(localcloud, net, instance_type=GPU_TYPE, instance_name="trainer", host_name="trainer-1",
                         ram_role_name=role, internet_max_bandwidth_out=10,
                         user_data=base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
                         system_disk=m.RunInstancesRequestSystemDisk(category="cloud_essd", size=60),
                         tag=[m.RunInstancesRequestTag(key="project", value="finetune")])
    assert instance_id.startswith("i-")
    instance = wait_status(localcloud, instance_id, "Running")
    assert (instance.instance_name, instance.host_name, instance.zone_id, instance.region_id) == (
        "trainer", "trainer-1", net.zone, localcloud.region)
    assert (instance.instance_type, instance.image_id, instance.instance_charge_type) == (
        GPU_TYPE, SYSTEM_IMAGE, "PostPaid")
    assert (instance.cpu, instance.memory, instance.gpuamount, instance.gpuspec) == (8, 30 * 1024, 1, "NVIDIA A10")
    assert instance.vpc_attributes.vpc_id == net.vpc_id
    assert instance.vpc_attributes.v_switch_id == net.vswitch_id
    (private_ip,) = instance.vpc_attributes.private_ip_address.ip_address
    assert private_ip.startswith("172.16.20.")
    assert len(instance.public_ip_address.ip_address) == 1
    assert instance.security_group_ids.security_group_id == [net.security_group_id]
    assert instance.spot_strategy == "NoSpot" and instance.operation_locks.lock_reason == []
    assert instance.osname == "Debian 12 64 bit"
    assert [(t.tag_key, t.tag_value) for t in instance.tags.tag] == [("project", "finetune")]
    assert instance.creation_time.endswith("Z")
    roles = ecs.describe_instance_ram_role(m.DescribeInstanceRamRoleRequest(
        region_id=localcloud.region, instance_ids=json.dumps([instance_id]))).body
    assert [(r.instance_id, r.ram_role_name) for r in roles.instance_ram_role_sets.instance_ram_role_set] == [
        (instance_id, role)]


def test_private_ips_come_from_the_vswitch_and_differ(localcloud: Any, net: Network) -> None:
    ids = run(localcloud, net, amount=3)
    addresses = {i.vpc_attributes.private_ip_address.ip_address[0] for i in describe(localcloud, ids)}
    assert len(addresses) == 3 and all(a.startswith("172.16.20.") for a in addresses)
    assert not any(describe_one(localcloud, i).public_ip_address.ip_address for i in ids)


def test_a_released_instances_address_is_not_handed_out_again_while_fresh_ones_remain(localcloud: Any,
                                                                                      net: Network) -> None:
    """A released machine can still be sending (a container goes after its record): what it sends must not pass
    for a new instance's, so a new instance gets an address no instance has had."""
    (first,) = run(localcloud, net)
    address = describe_one(localcloud, first).vpc_attributes.private_ip_address.ip_address[0]
    localcloud.client("ecs").delete_instance(m.DeleteInstanceRequest(instance_id=first, force=True))
    (second,) = run(localcloud, net)
    assert describe_one(localcloud, second).vpc_attributes.private_ip_address.ip_address[0] != address


def test_the_status_moves_from_pending_to_running(localcloud: Any, net: Network) -> None:
    (instance_id,) = run(localcloud, net)
    assert describe_one(localcloud, instance_id).status in ("Pending", "Starting", "Running")
    wait_status(localcloud, instance_id, "Running")


def test_the_password_is_never_returned(ecs: Any, localcloud: Any, net: Network) -> None:
    password = "Secr3t!pass"
    (instance_id,) = run(localcloud, net, password=password)
    for action, query in (("DescribeInstances", {"InstanceIds": json.dumps([instance_id])}),
                          ("DescribeInstanceAttribute", {"InstanceId": instance_id})):
        assert password not in json.dumps(raw_ecs_call(localcloud, action, query))
    state = (localcloud.state_dir / "state.db").read_bytes()
    assert password.encode() not in state


def test_a_weak_password_is_refused(localcloud: Any, net: Network) -> None:
    err = api_error(run, localcloud, net, password="short")
    assert err.code == "InvalidPassword.Malformed"


def test_user_data_must_be_base64(localcloud: Any, net: Network) -> None:
    err = api_error(run, localcloud, net, user_data="not base64 at all!")
    assert err.code == "InvalidUserData.NotBase64"


def test_prepaid_is_refused(localcloud: Any, net: Network) -> None:
    err = api_error(run, localcloud, net, instance_charge_type="PrePaid")
    assert err.code == "InvalidInstanceChargeType.ValueNotSupported"


@pytest.mark.parametrize(("fields", "code"), [
    ({"image_id": "m-doesnotexist"}, "InvalidImageId.NotFound"),
    ({"instance_type": "ecs.nope.large"}, "InvalidInstanceType.NotFound"),
    ({"v_switch_id": "vsw-doesnotexist"}, "InvalidVSwitchId.NotFound"),
    ({"security_group_id": "sg-doesnotexist"}, "InvalidSecurityGroupId.NotFound"),
    ({"ram_role_name": "no-such-role"}, "InvalidRamRole.NotFound"),
    ({"zone_id": "cn-hangzhou-k"}, "InvalidParameter.Mismatch"),  # the network is in zone h
])
def test_bad_references_are_refused(localcloud: Any, net: Network, fields: dict[str, Any], code: str) -> None:
    assert api_error(run, localcloud, net, **fields).code == code


def test_a_security_group_of_another_vpc_is_refused(ecs: Any, localcloud: Any, net: Network) -> None:
    other = make_network(localcloud, cidr="172.16.21.0/24")
    err = api_error(run, localcloud, net, security_group_id=other.security_group_id)
    assert err.code == "InvalidSecurityGroupId.VpcMismatch"


def test_a_role_ecs_may_not_assume_is_refused(localcloud: Any, net: Network) -> None:
    role = make_role(localcloud, ECS_TRUST.replace("ecs.aliyuncs.com", "fc.aliyuncs.com"))
    assert api_error(run, localcloud, net, ram_role_name=role).code == "InvalidRamRole.NotEcsRole"


def test_dry_run_checks_and_creates_nothing(localcloud: Any, net: Network) -> None:
    name = unique("dry")
    err = api_error(run, localcloud, net, dry_run=True, instance_name=name)
    assert err.code == "DryRunOperation"
    found = localcloud.client("ecs").describe_instances(m.DescribeInstancesRequest(
        region_id=localcloud.region, instance_name=name)).body
    assert found.total_count == 0


def test_the_same_client_token_launches_once(ecs: Any, localcloud: Any, net: Network) -> None:
    token = str(uuid.uuid4())
    name = unique("token")
    first = run(localcloud, net, client_token=token, instance_name=name)
    second = run(localcloud, net, client_token=token, instance_name=name)
    assert first == second
    found = ecs.describe_instances(m.DescribeInstancesRequest(region_id=localcloud.region, instance_name=name))
    assert found.body.total_count == 1


def test_describe_filters_by_tag_name_status_and_network(ecs: Any, localcloud: Any, net: Network) -> None:
    label = unique("batch")
    tagged = run(localcloud, net, amount=2, instance_name=f"{label}-a",
                 tag=[m.RunInstancesRequestTag(key="batch", value=label)])
    run(localcloud, net, instance_name=f"{label}-b")

    def found(**filters: Any) -> set[str]:
        request = m.DescribeInstancesRequest(region_id=localcloud.region, page_size=100, **filters)
        return {i.instance_id for i in ecs.describe_instances(request).body.instances.instance}

    assert found(tag=[m.DescribeInstancesRequestTag(key="batch", value=label)]) == set(tagged)
    assert len(found(instance_name=f"{label}-*")) == 3
    assert found(instance_name=f"{label}-a") == set(tagged)
    assert set(tagged) <= found(vpc_id=net.vpc_id, v_switch_id=net.vswitch_id, zone_id=net.zone)
    assert not found(vpc_id="vpc-other", instance_name=f"{label}-a")
    wait_status(localcloud, tagged[0], "Running")
    assert tagged[0] in found(status="Running", instance_name=f"{label}-a")


def test_describe_pages_by_number_and_by_token(ecs: Any, localcloud: Any, net: Network) -> None:
    label = unique("page")
    ids = run(localcloud, net, amount=5, instance_name=label)
    by_number = []
    for number in (1, 2, 3):
        body = ecs.describe_instances(m.DescribeInstancesRequest(
            region_id=localcloud.region, instance_name=label, page_size=2, page_number=number)).body
        assert body.total_count == 5 and body.page_number == number
        by_number += [i.instance_id for i in body.instances.instance]
    assert by_number == ids
    by_token, token = [], None
    while True:
        body = ecs.describe_instances(m.DescribeInstancesRequest(
            region_id=localcloud.region, instance_name=label, max_results=2, next_token=token)).body
        by_token += [i.instance_id for i in body.instances.instance]
        token = body.next_token
        if not token:
            break
    assert by_token == ids


def test_deleting_a_running_instance_needs_force(ecs: Any, localcloud: Any, net: Network) -> None:
    (instance_id,) = run(localcloud, net)
    wait_status(localcloud, instance_id, "Running")
    err = api_error(ecs.delete_instance, m.DeleteInstanceRequest(instance_id=instance_id))
    assert (err.code, err.status_code) == ("IncorrectInstanceStatus", 403)
    ecs.delete_instance(m.DeleteInstanceRequest(instance_id=instance_id, force=True))
    assert describe_one(localcloud, instance_id) is None
    err = api_error(ecs.delete_instance, m.DeleteInstanceRequest(instance_id=instance_id, force=True))
    assert (err.code, err.status_code) == ("InvalidInstanceId.NotFound", 404)


def test_stop_start_reboot_and_delete_a_stopped_instance(ecs: Any, localcloud: Any, net: Network) -> None:
    (instance_id,) = run(localcloud, net)
    err = api_error(ecs.start_instance, m.StartInstanceRequest(instance_id=instance_id))
    assert err.code == "IncorrectInstanceStatus"
    wait_status(localcloud, instance_id, "Running")
    ecs.stop_instance(m.StopInstanceRequest(instance_id=instance_id))
    assert describe_one(localcloud, instance_id).status in ("Stopping", "Stopped")
    wait_status(localcloud, instance_id, "Stopped")
    ecs.start_instance(m.StartInstanceRequest(instance_id=instance_id))
    wait_status(localcloud, instance_id, "Running")
    ecs.reboot_instance(m.RebootInstanceRequest(instance_id=instance_id))
    wait_status(localcloud, instance_id, "Running")
    ecs.stop_instance(m.StopInstanceRequest(instance_id=instance_id, force_stop=True))
    wait_status(localcloud, instance_id, "Stopped")
    ecs.delete_instance(m.DeleteInstanceRequest(instance_id=instance_id))
    assert describe_one(localcloud, instance_id) is None


def test_batch_stop_and_start_report_each_instance(ecs: Any, localcloud: Any, net: Network) -> None:
    ids = run(localcloud, net, amount=2)
    for instance_id in ids:
        wait_status(localcloud, instance_id, "Running")
    body = ecs.stop_instances(m.StopInstancesRequest(region_id=localcloud.region, instance_id=ids)).body
    assert [(r.instance_id, r.code, r.current_status) for r in body.instance_responses.instance_response] == [
        (i, "200", "Stopping") for i in ids]
    err = api_error(ecs.stop_instances, m.StopInstancesRequest(region_id=localcloud.region, instance_id=ids))
    assert err.code == "IncorrectInstanceStatus"
    for instance_id in ids:
        wait_status(localcloud, instance_id, "Stopped")
    ecs.start_instances(m.StartInstancesRequest(region_id=localcloud.region, instance_id=ids))
    ecs.delete_instances(m.DeleteInstancesRequest(region_id=localcloud.region, instance_id=ids, force=True))
    assert describe(localcloud, ids) == []


def test_describe_instance_status_lists_statuses(ecs: Any, localcloud: Any, net: Network) -> None:
    (instance_id,) = run(localcloud, net)
    wait_status(localcloud, instance_id, "Running")
    body = ecs.describe_instance_status(m.DescribeInstanceStatusRequest(
        region_id=localcloud.region, instance_id=[instance_id])).body
    assert [(s.instance_id, s.status) for s in body.instance_statuses.instance_status] == [(instance_id, "Running")]


def test_attach_and_detach_a_role(ecs: Any, localcloud: Any, net: Network) -> None:
    role = make_role(localcloud)
    (instance_id,) = run(localcloud, net)
    body = ecs.attach_instance_ram_role(m.AttachInstanceRamRoleRequest(
        region_id=localcloud.region, ram_role_name=role, instance_ids=json.dumps([instance_id]))).body
    assert (body.total_count, body.fail_count) == (1, 0)
    other = make_role(localcloud)
    body = ecs.attach_instance_ram_role(m.AttachInstanceRamRoleRequest(
        region_id=localcloud.region, ram_role_name=other, instance_ids=json.dumps([instance_id]))).body
    assert body.fail_count == 1
    ecs.detach_instance_ram_role(m.DetachInstanceRamRoleRequest(
        region_id=localcloud.region, instance_ids=json.dumps([instance_id])))
    roles = ecs.describe_instance_ram_role(m.DescribeInstanceRamRoleRequest(
        region_id=localcloud.region, instance_ids=json.dumps([instance_id]))).body
    assert roles.total_count == 0


def test_modify_instance_attribute(ecs: Any, localcloud: Any, net: Network) -> None:
    (instance_id,) = run(localcloud, net)
    ecs.modify_instance_attribute(m.ModifyInstanceAttributeRequest(
        instance_id=instance_id, instance_name="renamed", host_name="host-2", description="changed"))
    instance = describe_one(localcloud, instance_id)
    assert (instance.instance_name, instance.host_name, instance.description) == ("renamed", "host-2", "changed")


def test_tag_resources_and_list_them(ecs: Any, localcloud: Any, net: Network) -> None:
    (instance_id,) = run(localcloud, net)
    ecs.tag_resources(m.TagResourcesRequest(region_id=localcloud.region, resource_type="instance",
                                            resource_id=[instance_id],
                                            tag=[m.TagResourcesRequestTag(key="team", value="ml")]))
    body = ecs.list_tag_resources(m.ListTagResourcesRequest(region_id=localcloud.region, resource_type="instance",
                                                            resource_id=[instance_id])).body
    assert [(t.resource_id, t.tag_key, t.tag_value) for t in body.tag_resources.tag_resource] == [
        (instance_id, "team", "ml")]
    ecs.untag_resources(m.UntagResourcesRequest(region_id=localcloud.region, resource_type="instance",
                                                resource_id=[instance_id], tag_key=["team"]))
    assert describe_one(localcloud, instance_id).tags.tag == []


def test_instance_types_describe_the_hardware(ecs: Any, localcloud: Any) -> None:
    body = ecs.describe_instance_types(m.DescribeInstanceTypesRequest(instance_types=[GPU_TYPE, SMALL_TYPE])).body
    found = {t.instance_type_id: t for t in body.instance_types.instance_type}
    assert set(found) == {GPU_TYPE, SMALL_TYPE}
    gpu = found[GPU_TYPE]
    assert (gpu.cpu_core_count, gpu.memory_size, gpu.gpuamount, gpu.gpuspec) == (8, 30.0, 1, "NVIDIA A10")
    assert found[SMALL_TYPE].gpuamount == 0


def test_run_request_defaults_are_valid(localcloud: Any, net: Network) -> None:
    request = run_request(localcloud, net)
    assert request.image_id == SYSTEM_IMAGE
