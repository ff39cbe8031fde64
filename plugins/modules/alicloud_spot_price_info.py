#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_spot_price_info
short_description: The current spot and pay-as-you-go prices of an instance type, per zone
description:
  - Reads the spot price history of an instance type (ECS DescribeSpotPriceHistory, VPC network)
    and returns, per zone, the newest spot price and the pay-as-you-go price the API gives beside it
    (C(OriginPrice)). Changes nothing.
options:
  instance_type:
    description: The instance type.
    type: str
    required: true
  zones:
    description: The zones to read (all of the region's zones when empty).
    type: list
    elements: str
    default: []
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Read what the training's instance type costs now
  alicloud_spot_price_info:
    instance_type: ecs.gn7i-c8g1.2xlarge
    zones: [cn-hangzhou-h, cn-hangzhou-j]
  register: prices
"""

RETURN = r"""
prices:
  description: Per zone, the newest prices, in the order of I(zones) (or of the API's answer).
  returned: always
  type: list
  elements: dict
  contains:
    zone_id: {description: The zone., type: str}
    spot_price: {description: The newest spot price per hour., type: float}
    pay_as_you_go_price: {description: The pay-as-you-go price per hour (OriginPrice)., type: float}
    timestamp: {description: Since when the spot price holds (UTC)., type: str}
currency:
  description: The prices' currency.
  returned: always
  type: str
"""

from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402


def newest_per_zone(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The newest row of each zone (ISO timestamps in UTC sort as text)."""
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        zone = row.get("ZoneId", "")
        if zone not in newest or str(row.get("Timestamp", "")) >= str(newest[zone].get("Timestamp", "")):
            newest[zone] = row
    return newest


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        instance_type=dict(type="str", required=True),
        zones=dict(type="list", elements="str", default=[]),
    ))
    p = module.params
    module.check_region()
    rows: list[dict[str, Any]] = []
    currency = "CNY"
    for zone in p["zones"] or [None]:
        offset = 0
        while True:
            body = module.call("ecs", "DescribeSpotPriceHistory", {
                "RegionId": module.region, "NetworkType": "vpc", "InstanceType": p["instance_type"],
                "ZoneId": zone, "Offset": offset or None}) or {}
            currency = body.get("Currency") or currency
            rows += (body.get("SpotPrices") or {}).get("SpotPriceType") or []
            offset = int(body.get("NextOffset") or 0)
            if not offset:
                break
    newest = newest_per_zone(rows)
    order = p["zones"] or sorted(newest)
    prices = [{"zone_id": zone, "spot_price": float(newest[zone]["SpotPrice"]),
               "pay_as_you_go_price": float(newest[zone]["OriginPrice"]), "timestamp": newest[zone].get("Timestamp")}
              for zone in order if zone in newest]
    module.exit_json(changed=False, prices=prices, currency=currency)


if __name__ == "__main__":
    main()
