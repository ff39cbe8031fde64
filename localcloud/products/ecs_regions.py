"""ECS: regions and zones."""

from __future__ import annotations

from ..cloud import Cloud, Request, action


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
