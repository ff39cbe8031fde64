"""The cost model: a training's hours by charge type, priced as they ran and the recipe's three ways.

The recipe's table prices 12 hours of training at 3.5 RMB/h spot and 10 RMB/h pay-as-you-go: all
spot 42 RMB, hybrid (8 h spot, 4 h pay-as-you-go) 68 RMB, all pay-as-you-go 120 RMB, so spot saves
65 % and the hybrid 43.33 % against all pay-as-you-go. `price_hours` gives those figures for any
hours; tests/unit/test_cost.py holds it to the table. Hours on localcloud are virtual hours.

`cost_report` splits a ledger (localcloud's bill entries, or on a real account the entries the status
report estimates from the instances' age and the current prices) into the training (instances of the
scaling group) and the one-off instances (the template, inference), and prices the training's hours the
three ways. The status and chaos reports (plugins/filter/status.py, chaos.py) and bench/chaos_bench.py
use it.
"""

from __future__ import annotations

from typing import Any

SPOT, PAY_AS_YOU_GO = "spot", "pay-as-you-go"


def saving(cost: float, reference: float) -> float | None:
    """The part of `reference` that `cost` saves, in percent (two decimals); None without a reference."""
    return round(100 * (1 - cost / reference), 2) if reference else None


def price_hours(hours: dict[str, float], spot_price: float, pay_as_you_go_price: float) -> dict[str, Any]:
    """Hours by charge type priced as they ran (`hybrid`), all spot and all pay-as-you-go, with savings."""
    spot_hours, on_demand_hours = float(hours.get(SPOT, 0.0)), float(hours.get(PAY_AS_YOU_GO, 0.0))
    total = spot_hours + on_demand_hours
    as_run = spot_hours * spot_price + on_demand_hours * pay_as_you_go_price
    all_spot, all_on_demand = total * spot_price, total * pay_as_you_go_price
    return {
        "hours": {SPOT: round(spot_hours, 6), PAY_AS_YOU_GO: round(on_demand_hours, 6), "total": round(total, 6)},
        "cost": {"as_run": round(as_run, 6), "all_spot": round(all_spot, 6),
                 "all_pay_as_you_go": round(all_on_demand, 6)},
        "saving_percent": {"as_run": saving(as_run, all_on_demand), "all_spot": saving(all_spot, all_on_demand)},
        "prices": {SPOT: spot_price, PAY_AS_YOU_GO: pay_as_you_go_price},
    }


def _lines(entries: list[dict[str, Any]]) -> dict[str, Any]:
    by_type: dict[str, dict[str, float]] = {}
    for entry in entries:
        line = by_type.setdefault(entry["ChargeType"], {"instances": 0, "hours": 0.0, "cost": 0.0})
        line["instances"] += 1
        line["hours"] += float(entry["Hours"])
        line["cost"] += float(entry["Cost"])
    return {
        "instances": len(entries),
        "hours": round(sum(line["hours"] for line in by_type.values()), 6),
        "cost": round(sum(line["cost"] for line in by_type.values()), 6),
        "by_charge_type": {kind: {"instances": line["instances"], "hours": round(line["hours"], 6),
                                  "cost": round(line["cost"], 6)} for kind, line in sorted(by_type.items())},
    }


def cost_report(entries: list[dict[str, Any]], spot_price: float, pay_as_you_go_price: float,
                scaling_group_id: str = "", estimate: bool = False) -> dict[str, Any]:
    """The cost so far: the training's (the scaling group's instances) and the one-off instances' apart.

    `entries` carry InstanceId, ChargeType, ScalingGroupId, Hours and Cost (localcloud's bill entries).
    An entry belongs to the training when it names the scaling group (`scaling_group_id`, or any group
    when that is empty). The training's hours are also priced all spot, as they ran and all
    pay-as-you-go at the given prices; `saving_percent` is what the billed training cost saved against
    all pay-as-you-go for the same hours.
    """
    def training_entry(entry: dict[str, Any]) -> bool:
        group = entry.get("ScalingGroupId") or ""
        return group == scaling_group_id if scaling_group_id else bool(group)

    training = [e for e in entries if training_entry(e)]
    one_off = [e for e in entries if not training_entry(e)]
    lines, apart = _lines(training), _lines(one_off)
    priced = price_hours({kind: line["hours"] for kind, line in lines["by_charge_type"].items()},
                         float(spot_price), float(pay_as_you_go_price))
    return {
        "currency": "RMB",
        "estimate": bool(estimate),
        "source": "estimate: the instances in the group now, from their creation time, at today's prices"
        if estimate else "localcloud's ledger, virtual hours",
        "training": {**lines, "priced": priced,
                     "saving_percent": saving(lines["cost"], priced["cost"]["all_pay_as_you_go"])},
        "one_off": apart,
        "total": round(lines["cost"] + apart["cost"], 6),
    }


def _money(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def cost_lines(costs: dict[str, Any]) -> list[str]:
    """A cost report in lines a person reads."""
    train, priced = costs["training"], costs["training"]["priced"]
    kinds = ", ".join(f"{kind} {line['hours']:.3f} h {_money(line['cost'])}"
                      for kind, line in train["by_charge_type"].items()) or "no instance hours"
    saved = train["saving_percent"]
    lines = [f"Cost so far ({costs['currency']}; {costs['source']}):",
             f"  training: {train['instances']} instance(s), {kinds}; {_money(train['cost'])} in all",
             f"  the same {train['hours']:.3f} h all pay-as-you-go {_money(priced['cost']['all_pay_as_you_go'])}, "
             f"all spot {_money(priced['cost']['all_spot'])}; saved "
             + (f"{saved} % against all pay-as-you-go" if saved is not None else "nothing yet")]
    if not costs["estimate"]:
        one_off = costs["one_off"]
        lines.append(f"  one-off (template, bake, inference): {one_off['instances']} instance(s), "
                     f"{one_off['hours']:.3f} h, {_money(one_off['cost'])}; total {_money(costs['total'])}")
    return lines
