"""A walkthrough of the seed's cloud steps through the official SDKs, against localcloud.

Network across two zones, a RAM role for the instances with a least-privilege OSS policy, a
spot-first scaling group and its spot configuration, desired capacity 1; then it waits until
the group runs its instance, releases it as the recipe's test does, waits for the replacement and
prints what it created. Running it again reuses what exists.

    .venv/bin/localcloud up && .venv/bin/python -m localcloud.demo
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_ess20220222 import models as ess_models
from alibabacloud_ess20220222.client import Client as EssClient
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

from .config import SEED_INSTANCE_TYPE, default_state_dir

PREFIX = "ess-lora-deepseek7b"
ROLE = f"{PREFIX}-role"
POLICY = f"{PREFIX}-oss"
BUCKET = f"{PREFIX}-data"
WAIT_SECONDS = 120

TRUST_ECS = {"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                            "Principal": {"Service": ["ecs.aliyuncs.com"]}}], "Version": "1"}
# Training reads the model and data and writes its output; nothing else (the seed grants oss:*).
OSS_POLICY = {"Version": "1", "Statement": [
    {"Effect": "Allow", "Action": ["oss:ListObjects", "oss:GetBucketInfo"], "Resource": [f"acs:oss:*:*:{BUCKET}"]},
    {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": [f"acs:oss:*:*:{BUCKET}/*"]},
    {"Effect": "Allow", "Action": ["oss:PutObject", "oss:DeleteObject", "oss:AbortMultipartUpload"],
     "Resource": [f"acs:oss:*:*:{BUCKET}/output/*"]},
]}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env_file = Path(env.get("LOCALCLOUD_HOME") or default_state_dir()) / "env"
    if "LOCALCLOUD_ENDPOINT" not in env and env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                env[key] = value
    if "LOCALCLOUD_ENDPOINT" not in env:
        sys.exit("localcloud.demo: no endpoint; start localcloud first: .venv/bin/localcloud up")
    return env


def _config(env: dict[str, str]) -> Config:
    return Config(access_key_id=env["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                  access_key_secret=env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
                  region_id=env["ALIBABA_CLOUD_REGION_ID"], endpoint=env["LOCALCLOUD_ENDPOINT"], protocol="http")


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def network(vpc: VpcClient, ecs: EcsClient, region: str, zones: list[str]) -> tuple[str, list[str], str]:
    step("network: VPC, a vSwitch in each of two zones, a security group (SSH, ICMP)")
    found = vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=region, vpc_name=f"{PREFIX}-vpc")).body
    if found.vpcs.vpc:
        vpc_id = found.vpcs.vpc[0].vpc_id
    else:
        vpc_id = vpc.create_vpc(vpc_models.CreateVpcRequest(
            region_id=region, vpc_name=f"{PREFIX}-vpc", cidr_block="172.16.0.0/12")).body.vpc_id
    vswitch_ids = []
    for index, zone in enumerate(zones):
        existing = vpc.describe_vswitches(vpc_models.DescribeVSwitchesRequest(
            region_id=region, vpc_id=vpc_id, zone_id=zone)).body.v_switches.v_switch
        if existing:
            vswitch_ids.append(existing[0].v_switch_id)
            continue
        vswitch_ids.append(vpc.create_vswitch(vpc_models.CreateVSwitchRequest(
            region_id=region, vpc_id=vpc_id, zone_id=zone, cidr_block=f"172.16.{index}.0/24",
            v_switch_name=f"{PREFIX}-{zone}")).body.v_switch_id)
    groups = ecs.describe_security_groups(ecs_models.DescribeSecurityGroupsRequest(
        region_id=region, vpc_id=vpc_id, security_group_name=f"{PREFIX}-sg")).body.security_groups.security_group
    if groups:
        sg_id = groups[0].security_group_id
    else:
        sg_id = ecs.create_security_group(ecs_models.CreateSecurityGroupRequest(
            region_id=region, vpc_id=vpc_id, security_group_name=f"{PREFIX}-sg")).body.security_group_id
        for protocol, ports in (("tcp", "22/22"), ("icmp", "-1/-1")):
            ecs.authorize_security_group(ecs_models.AuthorizeSecurityGroupRequest(
                region_id=region, security_group_id=sg_id, ip_protocol=protocol, port_range=ports,
                source_cidr_ip="0.0.0.0/0"))
    print(f"    VPC {vpc_id}, vSwitches {', '.join(vswitch_ids)}, security group {sg_id}")
    return vpc_id, vswitch_ids, sg_id


def ram_role(ram: RamClient) -> str:
    step(f"RAM role {ROLE} for ECS with the least-privilege policy {POLICY}")
    try:
        ram.create_role(ram_models.CreateRoleRequest(role_name=ROLE,
                                                     assume_role_policy_document=json.dumps(TRUST_ECS)))
    except ClientException as err:
        if err.code != "EntityAlreadyExists.Role":
            raise
    try:
        ram.create_policy(ram_models.CreatePolicyRequest(policy_name=POLICY, policy_document=json.dumps(OSS_POLICY)))
    except ClientException as err:
        if err.code != "EntityAlreadyExists.Policy":
            raise
    try:
        ram.attach_policy_to_role(ram_models.AttachPolicyToRoleRequest(
            policy_type="Custom", policy_name=POLICY, role_name=ROLE))
    except ClientException as err:
        if err.code != "EntityAlreadyExists.Role.Policy":
            raise
    return ROLE


def system_image(ecs: EcsClient, region: str) -> str:
    images = ecs.describe_images(ecs_models.DescribeImagesRequest(
        region_id=region, image_owner_alias="system")).body.images.image
    if not images:
        sys.exit("localcloud.demo: the cloud has no system image")
    return images[0].image_id


def scaling_group(ess: EssClient, region: str, vswitch_ids: list[str], sg_id: str, image_id: str) -> str:
    step("spot-first scaling group over both zones, with a spot configuration (ess-config)")
    groups = ess.describe_scaling_groups(ess_models.DescribeScalingGroupsRequest(
        region_id=region, scaling_group_name=PREFIX)).body.scaling_groups
    if groups:
        group_id = groups[0].scaling_group_id
    else:
        group_id = ess.create_scaling_group(ess_models.CreateScalingGroupRequest(
            region_id=region, scaling_group_name=PREFIX, min_size=0, max_size=1, desired_capacity=0,
            v_switch_ids=vswitch_ids, multi_azpolicy="COST_OPTIMIZED", on_demand_base_capacity=0,
            on_demand_percentage_above_base_capacity=0, spot_instance_remedy=True,
            compensate_with_on_demand=True,
            capacity_options=ess_models.CreateScalingGroupRequestCapacityOptions(spot_auto_replace_on_demand=True),
        )).body.scaling_group_id
    configs = ess.describe_scaling_configurations(ess_models.DescribeScalingConfigurationsRequest(
        region_id=region, scaling_group_id=group_id)).body.scaling_configurations
    if configs:
        config_id = configs[0].scaling_configuration_id
    else:
        config_id = ess.create_scaling_configuration(ess_models.CreateScalingConfigurationRequest(
            scaling_group_id=group_id, scaling_configuration_name="ess-config", image_id=image_id,
            instance_types=[SEED_INSTANCE_TYPE], spot_strategy="SpotAsPriceGo", spot_duration=1,
            security_group_id=sg_id, ram_role_name=ROLE,
        )).body.scaling_configuration_id
    group = ess.describe_scaling_groups(ess_models.DescribeScalingGroupsRequest(
        region_id=region, scaling_group_ids=[group_id])).body.scaling_groups[0]
    if group.lifecycle_state != "Active":
        ess.enable_scaling_group(ess_models.EnableScalingGroupRequest(
            scaling_group_id=group_id, active_scaling_configuration_id=config_id))
    if group.desired_capacity != 1:
        step("desired capacity 1: Auto Scaling launches the training instance")
        ess.modify_scaling_group(ess_models.ModifyScalingGroupRequest(scaling_group_id=group_id, desired_capacity=1))
    print(f"    scaling group {group_id}, configuration {config_id}")
    return group_id


def wait_in_service(ess: EssClient, ecs: EcsClient, region: str, group_id: str) -> Any:
    step("waiting for the group's instance to be InService")
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        members = ess.describe_scaling_instances(ess_models.DescribeScalingInstancesRequest(
            region_id=region, scaling_group_id=group_id)).body.scaling_instances
        in_service = [m for m in members if m.lifecycle_state == "InService"]
        if in_service:
            return in_service[0]
        time.sleep(0.5)
    sys.exit(f"localcloud.demo: no instance InService after {WAIT_SECONDS}s; see `localcloud status`")


def release_and_wait(ess: EssClient, ecs: EcsClient, region: str, group_id: str, instance_id: str) -> Any:
    """The recipe's test: release the training instance; the group launches a replacement."""
    step(f"the recipe's test: release {instance_id}; the group must replace it")
    ecs.delete_instance(ecs_models.DeleteInstanceRequest(instance_id=instance_id, force=True))
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        member = wait_in_service(ess, ecs, region, group_id)
        if member.instance_id != instance_id:
            return member
        time.sleep(0.5)
    sys.exit(f"localcloud.demo: {instance_id} was not replaced within {WAIT_SECONDS}s")


def describe(member: Any) -> str:
    charge = "spot" if member.spot_strategy not in (None, "", "NoSpot") else "pay-as-you-go"
    return f"{member.instance_id} in {member.zone_id}, {charge}"


def main() -> None:
    env = _env()
    config = _config(env)
    region = env["ALIBABA_CLOUD_REGION_ID"]
    ecs, ess, vpc, ram = EcsClient(config), EssClient(config), VpcClient(config), RamClient(config)
    zones = [z.zone_id for z in ecs.describe_zones(ecs_models.DescribeZonesRequest(region_id=region)).body.zones.zone]
    _, vswitch_ids, sg_id = network(vpc, ecs, region, zones[-2:])
    ram_role(ram)
    group_id = scaling_group(ess, region, vswitch_ids, sg_id, system_image(ecs, region))
    member = wait_in_service(ess, ecs, region, group_id)
    print(f"    training instance {describe(member)}")
    replacement = release_and_wait(ess, ecs, region, group_id, member.instance_id)
    print(f"    replacement {describe(replacement)}")
    step("scaling activities")
    for activity in ess.describe_scaling_activities(ess_models.DescribeScalingActivitiesRequest(
            region_id=region, scaling_group_id=group_id)).body.scaling_activities:
        print(f"    {activity.start_time}  {activity.status_code:<10}  {activity.cause}")
    print("\nNext: `.venv/bin/localcloud status`, `.venv/bin/localcloud bill`, and "
          f"`.venv/bin/localcloud reclaim {replacement.instance_id}` to watch a spot reclaim.")


if __name__ == "__main__":
    main()
