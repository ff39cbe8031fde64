"""The cost model against the recipe's table (12 h at 3.5 and 10 RMB/h)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "playbooks" / "filter_plugins" / "cost.py"
spec = importlib.util.spec_from_file_location("cost_filters", PATH)
cost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cost)


def test_the_recipes_table_all_spot_hybrid_and_all_pay_as_you_go():
    priced = cost.price_hours({"spot": 8, "pay-as-you-go": 4}, 3.5, 10)
    assert priced["hours"]["total"] == 12
    assert priced["cost"] == {"as_run": 68, "all_spot": 42, "all_pay_as_you_go": 120}
    assert priced["saving_percent"] == {"as_run": 43.33, "all_spot": 65}


def test_hours_of_one_charge_type_and_none():
    assert cost.price_hours({"pay-as-you-go": 2.5}, 3.5, 10)["saving_percent"]["as_run"] == 0
    assert cost.price_hours({"spot": 1}, 3.5, 10)["cost"]["as_run"] == pytest.approx(3.5)
    nothing = cost.price_hours({}, 3.5, 10)
    assert nothing["cost"]["as_run"] == 0 and nothing["saving_percent"] == {"as_run": None, "all_spot": None}
