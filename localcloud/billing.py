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
        "Start": now, "End": None,
    })


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


def report(store: Store, now: float) -> dict:
    """Cost so far per charge type; hours are virtual hours."""
    lines: dict[str, Line] = {}
    entries = store.list(LEDGER)
    for e in entries:
        hours = max(0.0, ((e["End"] if e["End"] is not None else now) - e["Start"]) / 3600)
        line = lines.setdefault(e["ChargeType"], Line(e["ChargeType"], 0, 0.0, 0.0))
        line.instances += 1
        line.hours += hours
        line.cost += hours * e["PricePerHour"]
    total = sum(line.cost for line in lines.values())
    return {
        "currency": "RMB",
        "clock": "virtual",
        "by_charge_type": {
            k: {"instances": v.instances, "hours": round(v.hours, 6), "cost": round(v.cost, 6)}
            for k, v in sorted(lines.items())
        },
        "total": round(total, 6),
        "entries": entries,
    }
