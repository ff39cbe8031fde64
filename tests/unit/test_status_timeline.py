"""status.yml's report and the timeline's data (the collection's filter status.py and module_utils
timeline.py), and the picture drawn from it (plugins/action/training_timeline.py)."""

from __future__ import annotations

import json

from ansible_collections.spotfirst.finetune.plugins.action import training_timeline as drawing
from ansible_collections.spotfirst.finetune.plugins.filter import status
from ansible_collections.spotfirst.finetune.plugins.module_utils import timeline

HOUR = 3600.0
# localcloud at x60: virtual time 1_000_000 was real time 5_000 (the anchor).
CLOCK = {"scale": 60.0, "real": 5_000.0, "virtual": 1_000_000.0}


def ledger() -> dict:
    """Two training instances (a spot one released after 2 virtual hours, a pay-as-you-go one running) and
    the template instance, as localcloud's bill gives them."""
    entries = [
        {"InstanceId": "i-template", "ZoneId": "cn-hangzhou-j", "ChargeType": "pay-as-you-go", "PricePerHour": 10,
         "ScalingGroupId": "", "Start": 1_000_000 - HOUR, "End": 1_000_000, "Hours": 1.0, "Cost": 10.0},
        {"InstanceId": "i-spot", "ZoneId": "cn-hangzhou-j", "ChargeType": "spot", "PricePerHour": 3.5,
         "ScalingGroupId": "asg-1", "Start": 1_000_000, "End": 1_000_000 + 2 * HOUR, "Hours": 2.0, "Cost": 7.0},
        {"InstanceId": "i-payg", "ZoneId": "cn-hangzhou-h", "ChargeType": "pay-as-you-go", "PricePerHour": 10,
         "ScalingGroupId": "asg-1", "Start": 1_000_000 + 2 * HOUR, "End": None, "Hours": 1.0, "Cost": 10.0},
    ]
    return {"entries": entries, "now": 1_000_000 + 3 * HOUR, "time_scale": 60.0,
            "clock_anchor": {"real": 5_000.0, "virtual": 1_000_000.0}}


def events(*steps: tuple[float, int]) -> str:
    return "".join(json.dumps({"time": at, "event": "step", "step": step}) + "\n" for at, step in steps)


def test_the_timeline_has_a_bar_per_training_instance_and_the_steps_on_the_virtual_clock():
    bill = ledger()
    data = timeline.timeline_data(
        timeline.ledger_instances(bill, "asg-1"),
        {"i-spot": events((5_000 + 60, 1), (5_000 + 120, 2)), "i-payg": events((5_000 + 150, 3))},
        [{"wall_time": 5_000 + 120, "cause": "release"},
         {"time": 1_000_000 + 2.5 * HOUR, "cause": "spot back"}],
        10, timeline.ledger_clock(bill), bill["now"])
    assert [(b["instance_id"], b["charge"], b["zone"]) for b in data["bars"]] == [
        ("i-spot", "spot", "cn-hangzhou-j"), ("i-payg", "pay-as-you-go", "cn-hangzhou-h")]
    assert data["bars"][1]["end"] == bill["now"] and data["bars"][1]["running"]
    assert data["clock"] == "virtual" and data["origin"] == 1_000_000
    # A real minute is a virtual hour at x60.
    assert [(s["time"], s["step"]) for s in data["steps"]] == [(1_000_000 + HOUR, 1), (1_000_000 + 2 * HOUR, 2),
                                                             (1_000_000 + 2.5 * HOUR, 3)]
    assert [m["time"] for m in data["interruptions"]] == [1_000_000 + 2 * HOUR, 1_000_000 + 2.5 * HOUR]
    # Paid: 2 h spot at 3.5, then 1 h at 10; all pay-as-you-go: 3 h at 10.
    assert data["cost"][-1] == {"time": bill["now"], "cost": 17.0, "all_pay_as_you_go": 30.0}
    assert data["cost"][1] == {"time": 1_000_000 + 2 * HOUR, "cost": 7.0, "all_pay_as_you_go": 20.0}


def test_the_picture_is_a_png_drawn_from_that_data(tmp_path):
    bill = ledger()
    data = timeline.timeline_data(timeline.ledger_instances(bill), {"i-spot": events((5_060, 1))},
                                  [{"wall_time": 5_120, "cause": "release"}], 10, timeline.ledger_clock(bill),
                                  bill["now"])
    path = tmp_path / "out" / "timeline.png"
    drawing.draw(data, str(path), "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in path.parent.iterdir() if p.name != "timeline.png"]  # nothing half-written left


ACTIVITIES = [
    {"scaling_activity_id": "asa-3", "start_time": "2026-12-02T09:00Z", "description": "Replace a pay-as-you-go "
     "ECS instance with a spot instance", "cause": "Spot stock is available again in cn-hangzhou-j: the spot "
     "instance i-c replaces the pay-as-you-go instance i-p (SpotAutoReplaceOnDemand)."},
    {"scaling_activity_id": "asa-2", "start_time": "2026-12-02T08:00Z", "description": "Add \"1\" ECS instance(s)",
     "cause": "The spot instance i-b is about to be reclaimed; launching a replacement (SpotInstanceRemedy)."},
    {"scaling_activity_id": "asa-2b", "start_time": "2026-12-02T08:05Z", "description": "Add \"1\" ECS instance(s)",
     "cause": "The spot instance i-b was reclaimed and left the scaling group."},
    {"scaling_activity_id": "asa-1", "start_time": "2026-12-02T07:00Z", "description": "Add \"1\" ECS instance(s)",
     "cause": "The instance i-a left the scaling group (released)."},
    {"scaling_activity_id": "asa-0", "start_time": "2026-12-02T06:00Z", "description": "Add \"1\" ECS instance(s)",
     "cause": "The group has 0 instances in service, fewer than its Desired Capacity 1."},
]


def test_interruptions_from_the_scaling_activities_one_per_instance_taken_away():
    found = timeline.activity_interruptions(ACTIVITIES)
    # i-b's notice and its reclaim count once; the scale-out that was no interruption counts not at all.
    assert [(i["instance_id"], i["cause"], i["time"], i["activity"]) for i in found] == [
        ("i-a", "instance left (released)", "2026-12-02T07:00Z", "asa-1"),
        ("i-b", "spot reclaim notice", "2026-12-02T08:00Z", "asa-2"),
        ("i-p", "back to spot", "2026-12-02T09:00Z", "asa-3")]


def group_info() -> dict:
    return {"scaling_group": {"scaling_group_name": "ess-x", "scaling_group_id": "asg-1", "desired_capacity": 1,
                              "min_size": 0, "max_size": 1},
            "instances": [{"instance_id": "i-payg", "zone_id": "cn-hangzhou-h", "charge": "pay-as-you-go",
                           "lifecycle_state": "InService", "status": "Running", "creation_time": "2026-12-02T08:00Z"}],
            "activities": ACTIVITIES[1:]}


def training_info(**overrides) -> dict:
    info = {"state": "training", "step": 37, "max_steps": 150, "percent": 24.7, "complete": False,
            "steps_per_minute": 9.5, "eta_seconds": 713.7, "valid_checkpoints": [20, 30], "newest_checkpoint": 30,
            "newest_checkpoint_age_seconds": 12.0, "lease": {"holder": "i-payg", "heartbeat_age_seconds": 1.0,
                                                             "acquired": 1.0}}
    return {**info, **overrides}


PRICES = {"currency": "CNY", "prices": [
    {"zone_id": "cn-hangzhou-h", "spot_price": 3.1, "pay_as_you_go_price": 10.0, "timestamp": "2026-12-02T08:00:00Z"},
    {"zone_id": "cn-hangzhou-j", "spot_price": 3.5, "pay_as_you_go_price": 10.0, "timestamp": "2026-12-02T06:00:00Z"}]}
SETTINGS = {"scaling_group_name": "ess-x", "bucket": "b", "prefix": "output/", "spot_price": 3.5,
            "pay_as_you_go_price": 10}


def test_the_status_on_localcloud_from_the_ledger():
    report = status.status_report(group_info(), training_info(), PRICES, ledger(), 0, SETTINGS)
    assert not report["nothing_to_show"]
    assert report["instances"] == [{"instance_id": "i-payg", "zone": "cn-hangzhou-h", "charge": "pay-as-you-go",
                                    "lifecycle_state": "InService", "status": "Running",
                                    "since": "2026-12-02T08:00Z"}]
    assert report["prices"]["pay_as_you_go"] == 10.0 and [p["price"] for p in report["prices"]["spot"]] == [3.1, 3.5]
    assert report["training"]["newest_valid_checkpoint"] == 30 and report["training"]["lease"]["holder"] == "i-payg"
    assert [(i["instance_id"], i["cause"]) for i in report["interruptions"]] == [
        ("i-a", "instance left (released)"), ("i-b", "spot reclaim notice")]
    cost = report["cost"]
    assert not cost["estimate"] and (cost["training"]["hours"], cost["training"]["cost"]) == (3.0, 17.0)
    assert cost["training"]["priced"]["cost"]["all_pay_as_you_go"] == 30.0 and cost["one_off"]["cost"] == 10.0
    text = "\n".join(status.status_lines(report))
    assert "step 37/150 (24.7 %), 9.5 steps/min" in text
    assert "newest valid checkpoint-30 (newest checkpoint-30, 12s old)" in text
    assert "i-payg  cn-hangzhou-h  pay-as-you-go  InService/Running  since 2026-12-02T08:00Z" in text
    assert "one-off (template, bake, inference): 1 instance(s), 1.000 h, 10.00; total 27.00" in text


def test_the_status_on_a_real_account_is_an_estimate_and_after_teardown_there_is_nothing_to_show():
    now = timeline.epoch("2026-12-02T10:00Z")
    report = status.status_report(group_info(), training_info(), PRICES, None, now, SETTINGS)
    cost = report["cost"]
    assert cost["estimate"] and (cost["training"]["hours"], cost["training"]["cost"]) == (2.0, 20.0)
    assert "estimate" in "\n".join(status.status_lines(report))
    gone = status.status_report({"scaling_group": {}, "instances": [], "activities": []},
                                training_info(state="no bucket", step=0, valid_checkpoints=[], lease=None), {},
                                ledger(), now, SETTINGS)
    assert gone["nothing_to_show"]
    assert status.status_lines(gone) == [
        "Nothing to show: no scaling group ess-x and no training in oss://b/output/ (site.yml starts one)."]


def test_the_status_timeline_draws_the_ledgers_bars_or_on_a_real_account_the_groups_instances():
    info = training_info(event_logs={"i-payg": events((5_000 + 150, 3))})
    data = status.status_timeline(group_info(), info, PRICES, ledger(), 0, SETTINGS)
    assert [b["instance_id"] for b in data["bars"]] == ["i-spot", "i-payg"] and data["clock"] == "virtual"
    assert [(s["time"], s["step"]) for s in data["steps"]] == [(1_000_000 + 2.5 * HOUR, 3)]
    assert [m["cause"] for m in data["interruptions"]] == ["instance left (released)", "spot reclaim notice"]
    assert data["cost"][-1] == {"time": ledger()["now"], "cost": 17.0, "all_pay_as_you_go": 30.0}
    now = timeline.epoch("2026-12-02T10:00Z")
    real = status.status_timeline(group_info(), info, PRICES, None, now, SETTINGS)
    assert real["clock"] == "wall" and real["bars"] == [
        {"instance_id": "i-payg", "zone": "cn-hangzhou-h", "charge": "pay-as-you-go",
         "start": timeline.epoch("2026-12-02T08:00Z"), "end": now, "price": 10.0, "running": True}]
