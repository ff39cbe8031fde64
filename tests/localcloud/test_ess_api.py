"""The ESS 2022-02-22 API through the official SDK: groups, configurations, instances, activities."""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ess20220222 import models as ess_models

from .ess_support import (
    INSTANCE_TYPE,
    Network,
    activities,
    api_error,
    create_configuration,
    create_group,
    enable,
    group_of,
    in_service,
    make_network,
    scaling_instances,
    set_desired,
    unique,
    wait_for,
)

ZONES = ["cn-hangzhou-h", "cn-hangzhou-i"]


@pytest.fixture(scope="module")
def ess(localcloud: Any) -> Any:
    return localcloud.client("ess")


@pytest.fixture(scope="module")
def net(localcloud: Any) -> Network:
    return make_network(localcloud, ZONES)


def test_a_new_group_is_inactive_and_describes_its_spot_fields(ess: Any, localcloud: Any, net: Network) -> None:
    group_id = create_group(ess, localcloud, net, ZONES, max_size=2, spot_instance_pools=2,
                            removal_policies=["NewestInstance"],
                            tags=[ess_models.CreateScalingGroupRequestTags(key="project", value="sft")])
    assert group_id.startswith("asg-")
    group = group_of(ess, localcloud, group_id)
    assert group.lifecycle_state == "Inactive"
    assert (group.min_size, group.max_size, group.desired_capacity, group.total_capacity) == (0, 2, 0, 0)
    assert group.v_switch_ids == [net.vswitches[z] for z in ZONES]
    assert group.vpc_id == net.vpc_id
    assert group.multi_azpolicy == "COST_OPTIMIZED"
    assert group.spot_instance_remedy is True and group.spot_instance_pools == 2
    assert group.capacity_options.spot_auto_replace_on_demand is True
    assert group.capacity_options.compensate_with_on_demand is True
    assert group.removal_policies == ["NewestInstance"]
    assert [(t.tag_key, t.tag_value) for t in group.tags] == [("project", "sft")]
    assert group.creation_time.endswith("Z") and len(group.creation_time) == len("2024-05-01T08:00Z")


def test_a_client_token_makes_create_idempotent(ess: Any, localcloud: Any, net: Network) -> None:
    token = unique("token")
    first = create_group(ess, localcloud, net, ZONES, client_token=token)
    assert create_group(ess, localcloud, net, ZONES, client_token=token) == first


@pytest.mark.parametrize(("sizes", "code"), [
    ({"min_size": 3, "max_size": 1}, "InvalidParameter"),
    ({"min_size": 1, "max_size": 2, "desired_capacity": 3}, "InvalidParameter"),
    ({"max_size": -1}, "InvalidParameter.MaxSize"),
])
def test_invalid_sizes_are_refused(ess: Any, localcloud: Any, net: Network, sizes: dict, code: str) -> None:
    err = api_error(create_group, ess, localcloud, net, ZONES, **sizes)
    assert err.code == code


def test_an_unknown_vswitch_is_not_found(ess: Any, localcloud: Any) -> None:
    err = api_error(ess.create_scaling_group, ess_models.CreateScalingGroupRequest(
        region_id=localcloud.region, min_size=0, max_size=1, v_switch_ids=["vsw-doesnotexist"]))
    assert (err.code, err.status_code) == ("InvalidVSwitchId.NotFound", 404)


def test_group_names_are_unique(ess: Any, localcloud: Any, net: Network) -> None:
    name = unique("named")
    create_group(ess, localcloud, net, ZONES, scaling_group_name=name)
    err = api_error(create_group, ess, localcloud, net, ZONES, scaling_group_name=name)
    assert err.code == "ScalingGroupName.Duplicate"
    found = ess.describe_scaling_groups(ess_models.DescribeScalingGroupsRequest(
        region_id=localcloud.region, scaling_group_name=name)).body.scaling_groups
    assert [g.scaling_group_name for g in found] == [name]


def test_describe_scaling_groups_pages(ess: Any, localcloud: Any, net: Network) -> None:
    for _ in range(3):
        create_group(ess, localcloud, net, ZONES)
    body = ess.describe_scaling_groups(ess_models.DescribeScalingGroupsRequest(
        region_id=localcloud.region, page_size=2, page_number=2)).body
    assert body.total_count >= 3 and body.page_number == 2 and len(body.scaling_groups) == 2


def test_the_first_configuration_becomes_active_and_hides_the_password(ess: Any, localcloud: Any,
                                                                       net: Network) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    config_id = create_configuration(
        ess, localcloud, net, group_id, password="Secret-pass1", spot_strategy="SpotWithPriceLimit",
        spot_price_limits=[ess_models.CreateScalingConfigurationRequestSpotPriceLimits(
            instance_type=INSTANCE_TYPE, price_limit=4.0)],
        user_data="ZWNobyBoZWxsbw==", tags='{"job": "sft"}')
    assert config_id.startswith("asc-")
    assert group_of(ess, localcloud, group_id).active_scaling_configuration_id == config_id
    body = ess.describe_scaling_configurations(ess_models.DescribeScalingConfigurationsRequest(
        region_id=localcloud.region, scaling_group_id=group_id)).body
    raw = body.to_map()["ScalingConfigurations"][0]
    config = body.scaling_configurations[0]
    assert config.lifecycle_state == "Active"
    assert (config.image_id, config.instance_type, config.ram_role_name) == (net.image_id, INSTANCE_TYPE,
                                                                             net.role_name)
    assert config.spot_strategy == "SpotWithPriceLimit" and config.spot_duration == 1
    assert [(p.instance_type, p.price_limit) for p in config.spot_price_limits] == [(INSTANCE_TYPE, 4.0)]
    assert (config.system_disk_category, config.system_disk_size) == ("cloud_essd", 60)
    assert config.security_group_id == net.security_group_id
    assert [(t.key, t.value) for t in config.tags] == [("job", "sft")]
    assert config.password_setted is True
    assert "Secret-pass1" not in str(raw)


@pytest.mark.parametrize(("fields", "code"), [
    ({"image_id": "m-doesnotexist"}, "InvalidImageId.NotFound"),
    ({"ram_role_name": "no-such-role"}, "InvalidRamRole.NotFound"),
    ({"security_group_id": "sg-doesnotexist"}, "InvalidSecurityGroupId.NotFound"),
    ({"instance_type": "ecs.nope.large"}, "InvalidInstanceType.NotFound"),
    ({"spot_strategy": "Sometimes"}, "InvalidParameter.SpotStrategy"),
    ({"user_data": "not base64!"}, "InvalidParameter.UserData"),
    ({"key_pair_name": "no-such-key"}, "InvalidKeyPairName.NotFound"),
])
def test_a_configuration_needs_existing_resources(ess: Any, localcloud: Any, net: Network, fields: dict,
                                                  code: str) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    image_id = fields.pop("image_id", net.image_id)
    err = api_error(ess.create_scaling_configuration, ess_models.CreateScalingConfigurationRequest(
        scaling_group_id=group_id, image_id=image_id, instance_type=fields.pop("instance_type", INSTANCE_TYPE),
        **fields))
    assert err.code == code


def test_modify_configuration_changes_the_template(ess: Any, localcloud: Any, net: Network) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    config_id = create_configuration(ess, localcloud, net, group_id)
    ess.modify_scaling_configuration(ess_models.ModifyScalingConfigurationRequest(
        scaling_configuration_id=config_id, instance_types=["ecs.g7.large", INSTANCE_TYPE],
        spot_interruption_behavior="Terminate", scaling_configuration_name="renamed"))
    config = ess.describe_scaling_configurations(ess_models.DescribeScalingConfigurationsRequest(
        region_id=localcloud.region, scaling_configuration_ids=[config_id])).body.scaling_configurations[0]
    assert config.instance_types == ["ecs.g7.large", INSTANCE_TYPE]
    assert config.spot_interruption_behavior == "Terminate"
    # ECS's Stop is not for scaling configurations: "Currently, only terminate is supported" (the ESS model).
    err = api_error(ess.modify_scaling_configuration, ess_models.ModifyScalingConfigurationRequest(
        scaling_configuration_id=config_id, spot_interruption_behavior="Stop"))
    assert err.code.startswith("InvalidParameter") and "Terminate" in err.message
    assert config.scaling_configuration_name == "renamed"


def test_enable_needs_a_configuration(ess: Any, localcloud: Any, net: Network) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    err = api_error(ess.enable_scaling_group, ess_models.EnableScalingGroupRequest(
        region_id=localcloud.region, scaling_group_id=group_id))
    assert err.code == "MissingActiveScalingConfiguration"


def test_the_active_configuration_of_an_enabled_group_cannot_be_deleted(ess: Any, localcloud: Any,
                                                                       net: Network) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    config_id = create_configuration(ess, localcloud, net, group_id)
    enable(ess, localcloud, group_id, config_id)
    assert group_of(ess, localcloud, group_id).lifecycle_state == "Active"
    delete = ess_models.DeleteScalingConfigurationRequest(scaling_configuration_id=config_id)
    assert api_error(ess.delete_scaling_configuration, delete).code == "IncorrectScalingConfigurationLifecycleState"
    ess.disable_scaling_group(ess_models.DisableScalingGroupRequest(scaling_group_id=group_id))
    ess.delete_scaling_configuration(delete)
    assert group_of(ess, localcloud, group_id).active_scaling_configuration_id == ""


def test_modify_scaling_group_changes_sizes_and_spot_fields(ess: Any, localcloud: Any, net: Network) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    ess.modify_scaling_group(ess_models.ModifyScalingGroupRequest(
        scaling_group_id=group_id, max_size=5, min_size=1, desired_capacity=2, spot_instance_remedy=False,
        v_switch_ids=[net.vswitches["cn-hangzhou-i"]], multi_azpolicy="BALANCE",
        capacity_options=ess_models.ModifyScalingGroupRequestCapacityOptions(on_demand_base_capacity=1)))
    group = group_of(ess, localcloud, group_id)
    assert (group.min_size, group.max_size, group.desired_capacity) == (1, 5, 2)
    assert group.spot_instance_remedy is False and group.multi_azpolicy == "BALANCE"
    assert group.v_switch_ids == [net.vswitches["cn-hangzhou-i"]]
    assert group.on_demand_base_capacity == 1 and group.capacity_options.on_demand_base_capacity == 1
    err = api_error(ess.modify_scaling_group, ess_models.ModifyScalingGroupRequest(
        scaling_group_id=group_id, desired_capacity=9))
    assert err.code == "InvalidParameter"


def test_an_unknown_group_is_not_found(ess: Any) -> None:
    err = api_error(ess.disable_scaling_group, ess_models.DisableScalingGroupRequest(scaling_group_id="asg-nope"))
    assert (err.code, err.status_code) == ("InvalidScalingGroupId.NotFound", 404)


def _running_group(ess: Any, cloud: Any, net: Network, desired: int) -> str:
    group_id = create_group(ess, cloud, net, ZONES)
    enable(ess, cloud, group_id, create_configuration(ess, cloud, net, group_id))
    set_desired(ess, cloud, group_id, desired)
    wait_for(lambda: len(in_service(ess, cloud, group_id)) == desired)
    return group_id


def test_a_group_with_instances_is_deleted_only_with_force_delete(ess: Any, localcloud: Any, net: Network) -> None:
    group_id = _running_group(ess, localcloud, net, 1)
    member = scaling_instances(ess, localcloud, group_id)[0]
    assert member.creation_type == "AutoCreated" and member.health_status == "Healthy"
    assert member.scaling_activity_id.startswith("asa-")
    delete = ess_models.DeleteScalingGroupRequest(region_id=localcloud.region, scaling_group_id=group_id)
    assert api_error(ess.delete_scaling_group, delete).code == "InstanceInUse"
    delete.force_delete = True
    ess.delete_scaling_group(delete)
    groups = ess.describe_scaling_groups(ess_models.DescribeScalingGroupsRequest(
        region_id=localcloud.region, scaling_group_ids=[group_id])).body.scaling_groups
    assert groups == []
    ecs = localcloud.client("ecs")
    left = ecs.describe_instances(ecs_models.DescribeInstancesRequest(
        region_id=localcloud.region, instance_ids=f'["{member.instance_id}"]')).body.instances.instance
    assert left == []


def test_remove_instances_decreases_the_desired_capacity(ess: Any, localcloud: Any, net: Network) -> None:
    group_id = _running_group(ess, localcloud, net, 2)
    victim = scaling_instances(ess, localcloud, group_id)[0].instance_id
    activity_id = ess.remove_instances(ess_models.RemoveInstancesRequest(
        region_id=localcloud.region, scaling_group_id=group_id, instance_ids=[victim])).body.scaling_activity_id
    assert group_of(ess, localcloud, group_id).desired_capacity == 1
    assert [i.instance_id for i in scaling_instances(ess, localcloud, group_id)] != [victim]
    activity = next(a for a in activities(ess, localcloud, group_id) if a.scaling_activity_id == activity_id)
    assert activity.status_code == "Successful" and activity.destroyed_instances == [victim]
    err = api_error(ess.remove_instances, ess_models.RemoveInstancesRequest(
        region_id=localcloud.region, scaling_group_id=group_id, instance_ids=[victim]))
    assert err.code == "InvalidInstanceId.NotFound"
    ess.modify_scaling_group(ess_models.ModifyScalingGroupRequest(scaling_group_id=group_id, desired_capacity=0))


def test_activities_filter_by_status(ess: Any, localcloud: Any, net: Network) -> None:
    group_id = _running_group(ess, localcloud, net, 1)
    done = wait_for(lambda: ess.describe_scaling_activities(ess_models.DescribeScalingActivitiesRequest(
        region_id=localcloud.region, scaling_group_id=group_id, status_code="Successful")).body.scaling_activities)
    assert done[0].cause == ("A user modified the Desired Capacity, changing the expected number of instances "
                             "from 0 to 1.")
    assert done[0].progress == 100 and done[0].end_time and done[0].created_instances
    set_desired(ess, localcloud, group_id, 0)
