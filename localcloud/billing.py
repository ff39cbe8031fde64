"""The billing ledger: every instance's virtual seconds by charge type and hourly price."""

from __future__ import annotations

from dataclasses import dataclass

from .store import Store

SPOT = "spot"
PAY_AS_YOU_GO = "pay-as-you-go"
LEDGER = "ledger"  # keyed by InstanceId; this module owns it


def open_entry(store: Store, instance: dict, charge_type: str, price: float, now: float) -> None:
    store.put(LEDGER, instance["InstanceId"], {
        "InstanceId": instance["InstanceId"], "ZoneId": instance["ZoneId"],
        "InstanceType": instance["InstanceType"], "ChargeType": charge_type, "PricePerHour": price,
        "ScalingGroupId": instance.get("ScalingGroupId", ""), "Start": now, "RunningAt": None, "End": None,
    })


def mark_running(store: Store, instance_id: str, now: float) -> None:
    """When the instance first reached Running (its boot done): a milestone of a resume, not a charge."""
    entry = store.get(LEDGER, instance_id)
    if entry and entry.get("RunningAt") is None:
        entry["RunningAt"] = now
        store.put(LEDGER, instance_id, entry)


def close_entry(store: Store, instance_id: str, now: float) -> None:
    entry = store.get(LEDGER, instance_id)
    if entry and entry["End"] is None:
        entry["End"] = now
        store.put(LEDGER, instance_id, entry)


@dataclass
class Line:
    charge_type: str
    instances: int
    hours: float
    cost: float


def report(store: Store, now: float, clock: dict | None = None) -> dict:
    """Cost so far per charge type, and each instance's entry with its hours and cost so far.

    Hours are virtual hours. `clock` (the clock's state: scale and anchors) lets a reader place the
    instances' own wall-clock times on the virtual clock.
    """
    lines: dict[str, Line] = {}
    entries = []
    for e in store.list(LEDGER):
        hours = max(0.0, ((e["End"] if e["End"] is not None else now) - e["Start"]) / 3600)
        entries.append({**e, "ScalingGroupId": e.get("ScalingGroupId", ""), "Hours": round(hours, 6),
                        "Cost": round(hours * e["PricePerHour"], 6)})
        line = lines.setdefault(e["ChargeType"], Line(e["ChargeType"], 0, 0.0, 0.0))
        line.instances += 1
        line.hours += hours
        line.cost += hours * e["PricePerHour"]
    total = sum(line.cost for line in lines.values())
    return {
        "currency": "RMB",
        "clock": "virtual",
        "now": now,
        **({"time_scale": clock["scale"], "clock_anchor": {"real": clock["anchor_real"],
                                                           "virtual": clock["anchor_virtual"]}} if clock else {}),
        "by_charge_type": {
            k: {"instances": v.instances, "hours": round(v.hours, 6), "cost": round(v.cost, 6)}
            for k, v in sorted(lines.items())
        },
        "total": round(total, 6),
        "entries": entries,
    }
