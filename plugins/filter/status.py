"""status.yml's report: what the scaling group runs, the prices, where training stands, the
interruptions and the cost so far, as data (`status_report`, for `-e status_format=json`) and as
lines to read (`status_lines`), and the timeline picture's data (`status_timeline`).

The documentation of each filter is beside this file (<filter>.yml).
"""

from __future__ import annotations

from typing import Any

from ansible_collections.spotfirst.finetune.plugins.module_utils.cost_model import cost_lines, cost_report
from ansible_collections.spotfirst.finetune.plugins.module_utils.timeline import (
    activity_interruptions,
    duration,
    epoch,
    ledger_clock,
    ledger_instances,
    timeline_data,
)


def price_per_hour(instance: dict[str, Any], prices: list[dict[str, Any]]) -> float:
    """The current price of an instance (alicloud_scaling_info's) in its zone for its charge type, from
    alicloud_spot_price_info's prices; 0 when its zone has none."""
    price = next((p for p in prices if p["zone_id"] == instance.get("zone_id")), {})
    return float(price.get("spot_price" if instance["charge"] == "spot" else "pay_as_you_go_price") or 0.0)


def estimated_entries(instances: list[dict[str, Any]], prices: list[dict[str, Any]], now: float,
                      scaling_group_id: str) -> list[dict[str, Any]]:
    """Cost entries for a real account, where no ledger is at hand: each instance in the group now, from
    its creation time to `now`, at the current price of its zone and charge type (an estimate)."""
    entries = []
    for instance in instances:
        per_hour = price_per_hour(instance, prices)
        hours = max(0.0, (float(now) - epoch(instance["creation_time"])) / 3600) \
            if instance.get("creation_time") else 0.0
        entries.append({"InstanceId": instance["instance_id"], "ChargeType": instance["charge"],
                        "ScalingGroupId": scaling_group_id, "ZoneId": instance.get("zone_id"),
                        "Hours": round(hours, 6), "Cost": round(hours * per_hour, 6)})
    return entries


def group_timeline_instances(group: dict[str, Any], prices: dict[str, Any]) -> list[dict[str, Any]]:
    """The timeline's bars on a real account: the group's instances now, since their creation, at the
    current price of their zone and charge type."""
    return [{"instance_id": i["instance_id"], "zone": i.get("zone_id"), "charge": i["charge"],
             "start": i.get("creation_time"), "end": None, "price": price_per_hour(i, prices.get("prices") or [])}
            for i in group.get("instances") or [] if i.get("creation_time")]


def status_report(group: dict[str, Any], info: dict[str, Any], prices: dict[str, Any], bill: dict[str, Any] | None,
                  now: float, settings: dict[str, Any]) -> dict[str, Any]:
    """The status from alicloud_scaling_info (`group`), alicloud_training_info (`info`),
    alicloud_spot_price_info (`prices`) and localcloud's bill (None on a real account: the cost is then
    estimated). `settings`: scaling_group_name, bucket, prefix, spot_price and pay_as_you_go_price (the
    reference prices of the cost model)."""
    scaling_group = group.get("scaling_group") or {}
    group_id = scaling_group.get("scaling_group_id", "")
    instances = [{"instance_id": i.get("instance_id"), "zone": i.get("zone_id"), "charge": i.get("charge"),
                  "lifecycle_state": i.get("lifecycle_state"), "status": i.get("status"),
                  "since": i.get("creation_time")} for i in group.get("instances") or []]
    zone_prices = prices.get("prices") or []
    on_demand = next((p["pay_as_you_go_price"] for p in zone_prices), None)
    valid = info.get("valid_checkpoints") or []
    if bill is not None:
        entries = bill.get("entries", [])
        costs = cost_report(entries, settings["spot_price"], settings["pay_as_you_go_price"], group_id)
    else:
        entries = estimated_entries(group.get("instances") or [], zone_prices, now, group_id)
        costs = cost_report(entries, settings["spot_price"], settings["pay_as_you_go_price"], group_id,
                                 estimate=True)
    lease = info.get("lease")
    return {
        # After teardown (localcloud's ledger keeps the instances of the past: history, not a training).
        "nothing_to_show": not scaling_group and info.get("state") in ("no bucket", "not started"),
        "scaling_group": {"name": scaling_group.get("scaling_group_name", settings["scaling_group_name"]),
                          "id": group_id, "exists": bool(scaling_group),
                          "desired_capacity": scaling_group.get("desired_capacity"),
                          "min_size": scaling_group.get("min_size"), "max_size": scaling_group.get("max_size")},
        "instances": instances,
        "prices": {"currency": prices.get("currency"), "pay_as_you_go": on_demand,
                   "spot": [{"zone": p["zone_id"], "price": p["spot_price"], "since": p.get("timestamp")}
                            for p in zone_prices]},
        "training": {
            "bucket": settings["bucket"], "prefix": settings["prefix"], "state": info.get("state"),
            "step": info.get("step"), "max_steps": info.get("max_steps"), "percent": info.get("percent"),
            "complete": info.get("complete"), "steps_per_minute": info.get("steps_per_minute"),
            "eta_seconds": info.get("eta_seconds"),
            "newest_valid_checkpoint": valid[-1] if valid else None,
            "newest_checkpoint": info.get("newest_checkpoint") or None,
            "newest_checkpoint_age_seconds": info.get("newest_checkpoint_age_seconds"),
            "lease": {"holder": lease["holder"], "heartbeat_age_seconds": lease["heartbeat_age_seconds"]}
            if lease else None,
        },
        "interruptions": activity_interruptions(group.get("activities") or []),
        "cost": costs,
    }


def status_lines(report: dict[str, Any]) -> list[str]:
    """The report to read, a line per fact."""
    group, t = report["scaling_group"], report["training"]
    if report["nothing_to_show"]:
        return [f"Nothing to show: no scaling group {group['name']} and no training in "
                f"oss://{t['bucket']}/{t['prefix']} (site.yml starts one)."]
    lines = [f"Scaling group {group['name']} ({group['id']}): desired {group['desired_capacity']} "
             f"(min {group['min_size']}, max {group['max_size']}), {len(report['instances'])} instance(s)"
             if group["exists"] else f"Scaling group {group['name']}: none"]
    lines += [f"  {i['instance_id']}  {i['zone']}  {i['charge']}  {i['lifecycle_state']}/{i['status'] or '?'}  "
              f"since {i['since']}" for i in report["instances"]]
    prices = report["prices"]
    if prices["spot"]:
        lines.append(f"Prices ({prices['currency']}/h): pay-as-you-go {prices['pay_as_you_go']}; spot "
                     + ", ".join(f"{p['zone']} {p['price']}" for p in prices["spot"]))
    if t["state"] in ("no bucket", "not started"):
        lines.append(f"Training: {t['state']} (oss://{t['bucket']}/{t['prefix']})")
    else:
        rate = (f", {t['steps_per_minute']} steps/min, {duration(t['eta_seconds'])} left"
                if t["steps_per_minute"] else "")
        checkpoint = (f"newest valid checkpoint-{t['newest_valid_checkpoint']}" if t["newest_valid_checkpoint"]
                      else "no valid checkpoint yet")
        if t["newest_checkpoint"]:
            checkpoint += (f" (newest checkpoint-{t['newest_checkpoint']}, "
                           f"{duration(t['newest_checkpoint_age_seconds'])} old)")
        lease = "no lease held"
        if t["lease"]:
            lease = (f"lease held by {t['lease']['holder']} "
                     f"(heartbeat {duration(t['lease']['heartbeat_age_seconds'])} ago)")
        lines.append(f"Training: {'complete, ' if t['complete'] else ''}step {t['step']}/{t['max_steps'] or '?'}"
                     + (f" ({t['percent']} %)" if t["percent"] is not None else "") + f"{rate}; {checkpoint}; {lease}")
    lines.append(f"Interruptions: {len(report['interruptions'])}")
    lines += [f"  {n}. {i['time']} {i['instance_id']}: {i['cause']}" for n, i in enumerate(report["interruptions"], 1)]
    lines += cost_lines(report["cost"])
    if report.get("timeline"):
        lines.append(f"Timeline: {report['timeline']}")
    return lines


def status_timeline(group: dict[str, Any], info: dict[str, Any], prices: dict[str, Any], bill: dict[str, Any] | None,
                    now: float, settings: dict[str, Any]) -> dict[str, Any]:
    """The timeline picture's data (spotfirst.finetune.training_timeline draws it) from the same results as
    `status_report`: one bar per training instance (localcloud's ledger; on a real account the group's
    instances now, since their creation), the steps of alicloud_training_info's `event_logs`, a mark per
    interruption the scaling activities tell of, the cost against all pay-as-you-go."""
    if bill:
        bars = ledger_instances(bill, (group.get("scaling_group") or {}).get("scaling_group_id") or "")
    else:
        bars = group_timeline_instances(group, prices)
    return timeline_data(bars, info.get("event_logs") or {}, activity_interruptions(group.get("activities") or []),
                         settings["pay_as_you_go_price"], ledger_clock(bill) if bill else None,
                         bill["now"] if bill else now)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"status_report": status_report, "status_timeline": status_timeline, "status_lines": status_lines}
