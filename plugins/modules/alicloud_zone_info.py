#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_zone_info
short_description: The regions an account offers, the zones of one and the instance types each zone sells
description:
  - Reads ECS C(DescribeRegions), then, when the region is among them, C(DescribeZones) and, per
    zone, C(DescribeAvailableResource) for instance types (one call for every zone). Changes nothing.
  - An unknown region is not a failure here (I(region_known) says so); a preflight reports it with
    the other problems of the settings.
options:
  instance_types:
    description: Instance types to look up in each zone (C(DescribeAvailableResource)); none when empty.
    type: list
    elements: str
    default: []
  spot_strategy:
    description:
      - With a spot strategy, a second C(DescribeAvailableResource) with that C(SpotStrategy) gives
        I(spot_instance_types), where the types are sold as spot now. The API's default, C(NoSpot),
        answers for pay-as-you-go stock only.
    type: str
    choices: [NoSpot, SpotAsPriceGo, SpotWithPriceLimit]
    default: NoSpot
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Read the regions, the zones and where the training's instance type is sold
  alicloud_zone_info:
    instance_types: [ecs.gn7i-c8g1.2xlarge]
  register: cloud_zones
"""

RETURN = r"""
region:
  description: The region asked about.
  returned: always
  type: str
region_known:
  description: Whether the account offers the region.
  returned: always
  type: bool
regions:
  description: The regions the account offers.
  returned: always
  type: list
  elements: str
zones:
  description: The zones of the region (empty when the region is unknown).
  returned: always
  type: list
  elements: str
instance_types:
  description: Per zone, those of I(instance_types) it sells now, pay-as-you-go (C(WithStock) or C(ClosedWithStock)).
  returned: always
  type: dict
spot_instance_types:
  description: Per zone, those of I(instance_types) it sells now as spot (O(spot_strategy)); empty with C(NoSpot).
  returned: always
  type: dict
"""

from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402

SOLD = ("WithStock", "ClosedWithStock")


def sold_types(body: dict[str, Any]) -> dict[str, set[str]]:
    """Per zone, the instance types a DescribeAvailableResource answer says are sold."""
    found: dict[str, set[str]] = {}
    for zone in ((body.get("AvailableZones") or {}).get("AvailableZone")) or []:
        sold = found.setdefault(zone.get("ZoneId", ""), set())
        for resource in ((zone.get("AvailableResources") or {}).get("AvailableResource")) or []:
            for item in ((resource.get("SupportedResources") or {}).get("SupportedResource")) or []:
                if item.get("Status") == "Available" and item.get("StatusCategory", "WithStock") in SOLD:
                    sold.add(item.get("Value"))
    return found


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        instance_types=dict(type="list", elements="str", default=[]),
        spot_strategy=dict(type="str", default="NoSpot", choices=["NoSpot", "SpotAsPriceGo", "SpotWithPriceLimit"]),
    ))
    region = module.require_region()
    body = module.call("ecs", "DescribeRegions", {}) or {}
    regions = sorted(r.get("RegionId") for r in (body.get("Regions") or {}).get("Region", []))
    result: dict[str, Any] = {"changed": False, "region": region, "region_known": region in regions,
                              "regions": regions, "zones": [], "instance_types": {}, "spot_instance_types": {}}
    if region in regions:
        body = module.call("ecs", "DescribeZones", {"RegionId": region}) or {}
        result["zones"] = [z["ZoneId"] for z in (body.get("Zones") or {}).get("Zone", [])]
        wanted = module.params["instance_types"]
        strategies = [("instance_types", "NoSpot")]
        if module.params["spot_strategy"] != "NoSpot":
            strategies.append(("spot_instance_types", module.params["spot_strategy"]))
        for key, strategy in strategies if wanted else []:  # one call each: without ZoneId it covers every zone
            sold = sold_types(module.call("ecs", "DescribeAvailableResource", {
                "RegionId": region, "DestinationResource": "InstanceType", "InstanceChargeType": "PostPaid",
                "SpotStrategy": strategy}) or {})
            result[key] = {zone: [t for t in wanted if t in sold.get(zone, ())] for zone in result["zones"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
