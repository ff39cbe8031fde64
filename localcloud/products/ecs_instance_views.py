"""ECS: reading instances (DescribeInstances, DescribeInstanceAttribute, DescribeInstanceStatus)
in the shape of the SDK's response models. Secrets (PasswordHash, UserData) are never rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import images, instances
from ..clock import iso_minutes
from ..params import Params
from ..registry import Request, action
from .ecs_common import Record, dry_run, id_list, matches_name, matches_tags, page, page_numbered, render_tags
from .ecs_market import family, gpu_spec, type_spec

if TYPE_CHECKING:
    from ..cloud import Cloud

INSTANCE_STATUSES = ("Pending", "Running", "Starting", "Stopping", "Stopped")
# Pay-as-you-go instances never expire; ECS shows this date for them.
NO_EXPIRY = "2099-12-31T15:59Z"


def _hardware(cloud: Cloud, instance: Record) -> dict[str, Any]:
    spec = type_spec(cloud, instance["InstanceType"])
    gpu_model, _ = gpu_spec(spec)
    return {"Cpu": spec.cpu, "Memory": int(spec.memory_gib * 1024), "GPUAmount": spec.gpu, "GPUSpec": gpu_model,
            "InstanceTypeFamily": family(spec.name)}


def _os(cloud: Cloud, instance: Record) -> dict[str, Any]:
    image = images.IMAGE.find(cloud.store, instance["ImageId"]) or {}
    return {"OSName": image.get("OSName", ""), "OSNameEn": image.get("OSNameEn", ""),
            "OSType": image.get("OSType", "linux")}


def _locks(instance: Record) -> dict[str, Any]:
    return {"LockReason": [{"LockReason": lock["LockReason"], "LockMsg": lock.get("LockMsg", "")}
                           for lock in instance.get("OperationLocks", [])]}


def _addresses(value: str) -> dict[str, Any]:
    return {"IpAddress": [value] if value else []}


def _network_interface(instance: Record) -> dict[str, Any]:
    private_ip = instance.get("PrivateIpAddress", "")
    return {"NetworkInterface": [{
        "NetworkInterfaceId": "eni-" + instance["InstanceId"].removeprefix("i-"), "Type": "Primary",
        "PrimaryIpAddress": private_ip, "MacAddress": "",
        "PrivateIpSets": {"PrivateIpSet": [{"PrivateIpAddress": private_ip, "Primary": True}]},
    }]}


def render_instance(cloud: Cloud, instance: Record) -> dict[str, Any]:
    """One Instances.Instance entry of DescribeInstances."""
    copied = ("InstanceId", "InstanceName", "Description", "HostName", "Status", "RegionId", "ZoneId",
              "InstanceType", "ImageId", "InstanceChargeType", "SpotStrategy", "SpotPriceLimit", "SpotDuration",
              "SpotInterruptionBehavior", "CreationTime", "KeyPairName", "InternetMaxBandwidthOut")
    rendered: dict[str, Any] = {k: instance.get(k) for k in copied}
    rendered.update(_hardware(cloud, instance))
    rendered.update(_os(cloud, instance))
    started = instance.get("StartedAt")
    rendered.update({
        "VpcAttributes": {"VpcId": instance["VpcId"], "VSwitchId": instance["VSwitchId"], "NatIpAddress": "",
                          "PrivateIpAddress": _addresses(instance.get("PrivateIpAddress", ""))},
        "SecurityGroupIds": {"SecurityGroupId": list(instance.get("SecurityGroupIds", []))},
        "PublicIpAddress": _addresses(instance.get("PublicIpAddress", "")),
        "InnerIpAddress": _addresses(""), "RdmaIpAddress": _addresses(""),
        "EipAddress": {"AllocationId": "", "IpAddress": "", "Bandwidth": 0, "InternetChargeType": ""},
        "OperationLocks": _locks(instance), "Tags": render_tags(instance),
        "NetworkInterfaces": _network_interface(instance),
        "StartTime": iso_minutes(started) if started else "", "ExpiredTime": NO_EXPIRY, "AutoReleaseTime": "",
        "InstanceNetworkType": "vpc", "IoOptimized": True, "InternetChargeType": "PayByTraffic",
        "InternetMaxBandwidthIn": 200 if instance.get("PublicIpAddress") else 0,
        "DeletionProtection": False, "Recyclable": False, "DeviceAvailable": True,
        "StoppedMode": "KeepCharging" if instance["Status"] == "Stopped" else "Not-applicable",
        "SerialNumber": "", "ResourceGroupId": "", "LocalStorageAmount": 0, "LocalStorageCapacity": 0,
        "CreditSpecification": "", "DeploymentSetId": "", "HpcClusterId": "", "ClusterId": "", "VlanId": "",
        "MetadataOptions": {"HttpEndpoint": "enabled", "HttpTokens": "optional", "HttpPutResponseHopLimit": 1},
        "CpuOptions": {"CoreCount": max(1, rendered["Cpu"] // 2), "ThreadsPerCore": 2, "Numa": ""},
        "ImageOptions": {"LoginAsNonRoot": False}, "SecurityOptions": {}, "HibernationOptions": {"Configured": False},
    })
    return rendered


def _wanted(instance: Record, p: Params, ids: list[str], private_ips: list[str], public_ips: list[str]) -> bool:
    if ids and instance["InstanceId"] not in ids:
        return False
    for field in ("Status", "ZoneId", "VpcId", "VSwitchId", "InstanceType", "ImageId", "InstanceChargeType",
                  "KeyPairName"):
        value = p.str(field)
        if value and instance.get(field) != value:
            return False
    group = p.str("SecurityGroupId")
    if group and group not in instance.get("SecurityGroupIds", []):
        return False
    if private_ips and instance.get("PrivateIpAddress") not in private_ips:
        return False
    if public_ips and instance.get("PublicIpAddress") not in public_ips:
        return False
    lock = p.str("LockReason")
    if lock and lock not in [x["LockReason"] for x in instance.get("OperationLocks", [])]:
        return False
    return matches_name(instance["InstanceName"], p.str("InstanceName")) and matches_tags(instance, p.tags("Tag"))


def any_instance(_cloud: Cloud, _params: object) -> str:
    """RAM authorizes DescribeInstances on `acs:ecs:<region>:<account>:instance/*`."""
    return "instance/*"


@action("ecs", "DescribeInstances", resource=any_instance)
def describe_instances(cloud: Cloud, req: Request) -> dict:
    p = req.params
    p.str("Status", choices=INSTANCE_STATUSES)
    dry_run(p)
    ids = id_list(p, "InstanceIds")
    private_ips, public_ips = id_list(p, "PrivateIpAddresses"), id_list(p, "PublicIpAddresses")
    found = [i for i in instances.INSTANCE.all(cloud.store) if _wanted(i, p, ids, private_ips, public_ips)]
    chunk, paging = page(p, found, default_size=10, max_size=100)
    if "NextToken" not in paging:
        paging["NextToken"] = ""
    return {**paging, "Instances": {"Instance": [render_instance(cloud, i) for i in chunk]}}


@action("ecs", "DescribeInstanceAttribute")
def describe_instance_attribute(cloud: Cloud, req: Request) -> dict:
    instance = instances.get(cloud, req.params.str("InstanceId", required=True) or "")
    full = render_instance(cloud, instance)
    keep = ("InstanceId", "InstanceName", "Description", "HostName", "Status", "RegionId", "ZoneId",
            "InstanceType", "ImageId", "InstanceChargeType", "CreationTime", "Cpu", "Memory", "VpcAttributes",
            "SecurityGroupIds", "PublicIpAddress", "InnerIpAddress", "EipAddress", "InternetChargeType",
            "InternetMaxBandwidthIn", "InternetMaxBandwidthOut", "InstanceNetworkType", "IoOptimized",
            "ExpiredTime", "StoppedMode", "SerialNumber", "CreditSpecification", "ClusterId", "VlanId")
    rendered = {k: full[k] for k in keep}
    rendered["OperationLocks"] = {"LockReason": [{"LockReason": x["LockReason"]}
                                                 for x in instance.get("OperationLocks", [])]}
    return rendered


@action("ecs", "DescribeInstanceStatus")
def describe_instance_status(cloud: Cloud, req: Request) -> dict:
    p = req.params
    zone = p.str("ZoneId")
    ids = id_list(p, "InstanceId")
    if zone:
        cloud.market.check(zone, None)
    found = [i for i in instances.INSTANCE.all(cloud.store)
             if (not zone or i["ZoneId"] == zone) and (not ids or i["InstanceId"] in ids)]
    chunk, paging = page_numbered(p, found, default_size=10, max_size=50)
    return {**paging, "InstanceStatuses": {"InstanceStatus": [
        {"InstanceId": i["InstanceId"], "Status": i["Status"]} for i in chunk]}}
