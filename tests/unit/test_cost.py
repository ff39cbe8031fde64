"""The cost model against the recipe's table (12 h at 3.5 and 10 RMB/h)."""

from __future__ import annotations

import pytest
from ansible_collections.spotfirst.finetune.plugins.module_utils import cost_model as cost


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


def entry(instance: str, charge: str, hours: float, price: float, group: str = "asg-1") -> dict:
    return {"InstanceId": instance, "ChargeType": charge, "ScalingGroupId": group, "Hours": hours,
            "Cost": hours * price}


def test_the_cost_report_prices_the_trainings_hours_and_keeps_the_one_off_apart():
    entries = [entry("i-a", "spot", 5, 3.5), entry("i-b", "pay-as-you-go", 4, 10), entry("i-c", "spot", 3, 3.5),
               entry("i-template", "pay-as-you-go", 2, 10, group=""), entry("i-infer", "spot", 0.5, 3.5, group="")]
    report = cost.cost_report(entries, 3.5, 10)
    training = report["training"]
    assert (training["instances"], training["hours"], training["cost"]) == (3, 12, 68)
    assert training["by_charge_type"] == {"pay-as-you-go": {"instances": 1, "hours": 4, "cost": 40},
                                          "spot": {"instances": 2, "hours": 8, "cost": 28}}
    assert training["priced"]["cost"] == {"as_run": 68, "all_spot": 42, "all_pay_as_you_go": 120}
    assert training["saving_percent"] == 43.33
    assert (report["one_off"]["instances"], report["one_off"]["hours"], report["one_off"]["cost"]) == (2, 2.5, 21.75)
    assert report["total"] == 89.75 and report["estimate"] is False


def test_the_cost_report_of_one_scaling_group_and_of_nothing():
    entries = [entry("i-a", "spot", 2, 3.5), entry("i-other", "spot", 7, 3.5, group="asg-2")]
    assert cost.cost_report(entries, 3.5, 10, scaling_group_id="asg-1")["training"]["hours"] == 2
    empty = cost.cost_report([], 3.5, 10, estimate=True)
    assert empty["training"]["cost"] == 0 and empty["training"]["saving_percent"] is None and empty["estimate"]
