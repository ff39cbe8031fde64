"""ECS: regions and zones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..registry import Request, action

if TYPE_CHECKING:
    from ..cloud import Cloud


@action("ecs", "DescribeRegions")
def describe_regions(cloud: Cloud, req: Request) -> dict:
    region = cloud.settings.region
    return {"Regions": {"Region": [{
        "RegionId": region, "LocalName": "China (Hangzhou)" if region == "cn-hangzhou" else region,
        "RegionEndpoint": f"ecs.{region}.aliyuncs.com", "Status": "available",
    }]}}


@action("ecs", "DescribeZones")
def describe_zones(cloud: Cloud, req: Request) -> dict:
    zones = []
    for zone in cloud.market.zones:
        zones.append({
            "ZoneId": zone, "LocalName": zone, "ZoneType": "AvailabilityZone",
            "AvailableInstanceTypes": {"InstanceTypes": cloud.market.instance_types},
            "AvailableResourceCreation": {"ResourceTypes": ["Instance", "Disk", "VSwitch"]},
        })
    return {"Zones": {"Zone": zones}}
