"""Helpers for the Auto Scaling tests: a network, a role and an image made through the official SDKs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ess20220222 import models as ess_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models

from .ecs_support import unique as unique  # one name maker for every test cloud
from .ecs_support import wait_for as wait_for  # one poller for the ECS and ESS tests

INSTANCE_TYPE = "ecs.gn7i-c8g1.2xlarge"
ECS_TRUST = json.dumps({"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                       "Principal": {"Service": ["ecs.aliyuncs.com"]}}], "Version": "1"})


def api_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ClientException:
    """The SDK exception a call raises (fails the test when it succeeds)."""
    try:
        call(*args, **kwargs)
    except ClientException as err:
        return err
    raise AssertionError(f"{call.__name__} succeeded; an API error was expected")


@dataclass
class Network:
    """A VPC with one vSwitch per zone, a security group, an instance role and the system image."""
    vpc_id: str
    vswitches: dict[str, str]  # zone -> vSwitch id
    security_group_id: str
    role_name: str
    image_id: str


def make_network(cloud: Any, zones: list[str]) -> Network:
    vpc = cloud.client("vpc")
    vpc_id = vpc.create_vpc(vpc_models.CreateVpcRequest(region_id=cloud.region, cidr_block="10.0.0.0/8",
                                                        vpc_name=unique("vpc"))).body.vpc_id
    vswitches = {}
    for index, zone in enumerate(zones):
        vswitches[zone] = vpc.create_vswitch(vpc_models.CreateVSwitchRequest(
            region_id=cloud.region, vpc_id=vpc_id, zone_id=zone, cidr_block=f"10.{index + 1}.0.0/24",
            v_switch_name=unique("vsw"))).body.v_switch_id
    ecs = cloud.client("ecs")
    sg_id = ecs.create_security_group(ecs_models.CreateSecurityGroupRequest(
        region_id=cloud.region, vpc_id=vpc_id, security_group_name=unique("sg"))).body.security_group_id
    images = ecs.describe_images(ecs_models.DescribeImagesRequest(region_id=cloud.region,
                                                                  image_owner_alias="system")).body.images.image
    role_name = unique("train-role")
    cloud.client("ram").create_role(ram_models.CreateRoleRequest(role_name=role_name,
                                                                 assume_role_policy_document=ECS_TRUST))
    return Network(vpc_id, vswitches, sg_id, role_name, images[0].image_id)


def create_group(ess: Any, cloud: Any, net: Network, zones: list[str], **fields: Any) -> str:
    """A COST_OPTIMIZED spot-first group over `zones` (in that priority order), as the seed configures it."""
    options = {"scaling_group_name": unique("asg"), "multi_azpolicy": "COST_OPTIMIZED",
               "min_size": 0, "max_size": 3, "desired_capacity": 0,
               "on_demand_base_capacity": 0, "on_demand_percentage_above_base_capacity": 0,
               "compensate_with_on_demand": True, "spot_instance_remedy": True,
               "capacity_options": ess_models.CreateScalingGroupRequestCapacityOptions(
                   spot_auto_replace_on_demand=fields.pop("spot_auto_replace_on_demand", True))}
    options.update(fields)
    return ess.create_scaling_group(ess_models.CreateScalingGroupRequest(
        region_id=cloud.region, v_switch_ids=[net.vswitches[z] for z in zones], **options)).body.scaling_group_id


def create_configuration(ess: Any, cloud: Any, net: Network, group_id: str, **fields: Any) -> str:
    options = {"instance_type": INSTANCE_TYPE, "spot_strategy": "SpotAsPriceGo", "spot_duration": 1,
               "security_group_id": net.security_group_id, "ram_role_name": net.role_name,
               "system_disk": ess_models.CreateScalingConfigurationRequestSystemDisk(category="cloud_essd",
                                                                                      size=60)}
    options.update(fields)
    return ess.create_scaling_configuration(ess_models.CreateScalingConfigurationRequest(
        scaling_group_id=group_id, scaling_configuration_name=unique("ess-config"),
        image_id=net.image_id, **options)).body.scaling_configuration_id


def enable(ess: Any, cloud: Any, group_id: str, config_id: str) -> None:
    ess.enable_scaling_group(ess_models.EnableScalingGroupRequest(
        region_id=cloud.region, scaling_group_id=group_id, active_scaling_configuration_id=config_id))


def set_desired(ess: Any, cloud: Any, group_id: str, desired: int) -> None:
    ess.modify_scaling_group(ess_models.ModifyScalingGroupRequest(
        scaling_group_id=group_id, desired_capacity=desired))


def scaling_instances(ess: Any, cloud: Any, group_id: str) -> list[Any]:
    return ess.describe_scaling_instances(ess_models.DescribeScalingInstancesRequest(
        region_id=cloud.region, scaling_group_id=group_id, page_size=50)).body.scaling_instances


def in_service(ess: Any, cloud: Any, group_id: str) -> list[Any]:
    return [i for i in scaling_instances(ess, cloud, group_id) if i.lifecycle_state == "InService"]


def activities(ess: Any, cloud: Any, group_id: str) -> list[Any]:
    return ess.describe_scaling_activities(ess_models.DescribeScalingActivitiesRequest(
        region_id=cloud.region, scaling_group_id=group_id, page_size=50)).body.scaling_activities


def group_of(ess: Any, cloud: Any, group_id: str) -> Any:
    return ess.describe_scaling_groups(ess_models.DescribeScalingGroupsRequest(
        region_id=cloud.region, scaling_group_ids=[group_id])).body.scaling_groups[0]


def set_spot(cloud: Any, zones: list[str], capacity: int) -> None:
    for zone in zones:
        cloud.admin("spot", {"zone": zone, "instance_type": INSTANCE_TYPE, "capacity": capacity})


def member_held_at_scale_in(cloud: Any, zone: str, timeout: int = 21600) -> tuple[Any, str, Any]:
    """A group in `zone` with a SCALE_IN lifecycle hook (of `timeout` seconds: hours by default) and one
    member in service: (the ESS client, the group id, the member)."""
    ess = cloud.client("ess")
    net = make_network(cloud, [zone])
    group_id = create_group(ess, cloud, net, [zone])
    enable(ess, cloud, group_id, create_configuration(ess, cloud, net, group_id))
    ess.create_lifecycle_hook(ess_models.CreateLifecycleHookRequest(
        scaling_group_id=group_id, lifecycle_transition="SCALE_IN", heartbeat_timeout=timeout,
        lifecycle_hook_name="handover"))
    set_desired(ess, cloud, group_id, 1)
    (member,) = wait_for(lambda: in_service(ess, cloud, group_id), what="an instance in service")
    return ess, group_id, member
