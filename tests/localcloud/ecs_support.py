"""Helpers for the ECS tests: a network made through the VPC and ECS SDKs, launches, waits."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vpc20160428 import models as vpc_models

from ..polling import wait_for as wait_for  # re-exported: the ECS and ESS tests import it from here

SYSTEM_IMAGE = "debian_12_x64_20G_alibase_localcloud.vhd"
GPU_TYPE = "ecs.gn7i-c8g1.2xlarge"
SMALL_TYPE = "ecs.g7.large"
ECS_TRUST = json.dumps({"Version": "1", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                                       "Principal": {"Service": ["ecs.aliyuncs.com"]}}]})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ClientException:
    """The SDK exception a call raises (fails the test when it succeeds)."""
    with pytest.raises(ClientException) as info:
        call(*args, **kwargs)
    return info.value


@dataclass
class Network:
    vpc_id: str
    vswitch_id: str
    zone: str
    cidr: str
    security_group_id: str


def make_network(cloud: Any, zone: str | None = None, cidr: str = "172.16.1.0/24") -> Network:
    """A VPC with one vSwitch and one security group."""
    zone = zone or f"{cloud.region}-h"
    vpc = cloud.client("vpc")
    vpc_id = vpc.create_vpc(vpc_models.CreateVpcRequest(
        region_id=cloud.region, cidr_block="172.16.0.0/12", vpc_name=unique("vpc"))).body.vpc_id
    vswitch_id = vpc.create_vswitch(vpc_models.CreateVSwitchRequest(
        region_id=cloud.region, vpc_id=vpc_id, zone_id=zone, cidr_block=cidr,
        v_switch_name=unique("vsw"))).body.v_switch_id
    group_id = cloud.client("ecs").create_security_group(ecs_models.CreateSecurityGroupRequest(
        region_id=cloud.region, vpc_id=vpc_id, security_group_name=unique("sg"))).body.security_group_id
    return Network(vpc_id, vswitch_id, zone, cidr, group_id)


def make_role(cloud: Any, trust: str = ECS_TRUST) -> str:
    name = unique("role")
    cloud.client("ram").create_role(ram_models.CreateRoleRequest(role_name=name, assume_role_policy_document=trust))
    return name


def run_request(cloud: Any, net: Network, **fields: Any) -> ecs_models.RunInstancesRequest:
    options: dict[str, Any] = {"region_id": cloud.region, "image_id": SYSTEM_IMAGE, "instance_type": SMALL_TYPE,
                               "v_switch_id": net.vswitch_id, "security_group_id": net.security_group_id,
                               "instance_charge_type": "PostPaid"}
    options.update(fields)
    return ecs_models.RunInstancesRequest(**options)


def run(cloud: Any, net: Network, **fields: Any) -> list[str]:
    """Launch instances; returns their ids."""
    return cloud.client("ecs").run_instances(run_request(cloud, net, **fields)).body.instance_id_sets.instance_id_set


def describe(cloud: Any, instance_ids: list[str]) -> list[Any]:
    request = ecs_models.DescribeInstancesRequest(region_id=cloud.region, instance_ids=json.dumps(instance_ids),
                                                  page_size=100)
    return cloud.client("ecs").describe_instances(request).body.instances.instance


def describe_one(cloud: Any, instance_id: str) -> Any | None:
    found = describe(cloud, [instance_id])
    return found[0] if found else None


def raw_ecs_call(cloud: Any, action: str, query: dict[str, Any]) -> dict[str, Any]:
    """An ECS call through the SDK's generic path; returns the response body exactly as sent."""
    from alibabacloud_tea_openapi import utils_models
    from alibabacloud_tea_openapi.utils import Utils
    from darabonba.runtime import RuntimeOptions

    params = utils_models.Params(action=action, version="2014-05-26", protocol="HTTP", pathname="/",
                                 method="POST", auth_type="AK", style="RPC", req_body_type="formData",
                                 body_type="json")
    request = utils_models.OpenApiRequest(query=Utils.query({"RegionId": cloud.region, **query}))
    return cloud.client("ecs").call_api(params, request, RuntimeOptions())["body"]


def wait_status(cloud: Any, instance_id: str, status: str, timeout: float = 30.0) -> Any:
    return wait_for(lambda: (i := describe_one(cloud, instance_id)) is not None and i.status == status and i,
                    timeout)


def ssh_keygen_md5(public_key_file: Path) -> str:
    """OpenSSH's own MD5 fingerprint of a public key file (`ssh-keygen -E md5 -l`), without its `MD5:`: what ECS
    gives a key pair (RFC 4716)."""
    shown = subprocess.run(["ssh-keygen", "-E", "md5", "-lf", str(public_key_file)], capture_output=True, text=True,
                           check=True).stdout
    return shown.split()[1].removeprefix("MD5:")
