"""The cost model: a training's hours by charge type, priced as they ran and the recipe's three ways.

The recipe's table prices 12 hours of training at 3.5 RMB/h spot and 10 RMB/h pay-as-you-go: all
spot 42 RMB, hybrid (8 h spot, 4 h pay-as-you-go) 68 RMB, all pay-as-you-go 120 RMB, so spot saves
65 % and the hybrid 43.33 % against all pay-as-you-go. `price_hours` gives those figures for any
hours; tests/unit/test_cost.py holds it to the table. Hours on localcloud are virtual hours.
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


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"price_hours": price_hours}
