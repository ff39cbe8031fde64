"""The Auto Scaling engine: spot-first placement, fallback, replacement, remedy, restarts."""

from __future__ import annotations

import time
from typing import Any

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ess20220222 import models as ess_models

from .ess_support import (
    INSTANCE_TYPE,
    Network,
    activities,
    create_configuration,
    create_group,
    enable,
    group_of,
    in_service,
    make_network,
    scaling_instances,
    set_desired,
    set_spot,
    wait_for,
)

ZONES = ["cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"]


def _setup(cloud: Any, zones: list[str] = ZONES, config: dict | None = None, **group: Any) -> tuple[Any, str]:
    """An enabled spot-first group over `zones`, desired 0; returns the ESS client and the group id."""
    net: Network = make_network(cloud, zones)
    ess = cloud.client("ess")
    group_id = create_group(ess, cloud, net, zones, **group)
    enable(ess, cloud, group_id, create_configuration(ess, cloud, net, group_id, **(config or {})))
    return ess, group_id


def _ecs_instance_ids(cloud: Any) -> set[str]:
    found = cloud.client("ecs").describe_instances(ecs_models.DescribeInstancesRequest(
        region_id=cloud.region, page_size=100)).body.instances.instance
    return {i.instance_id for i in found}


def test_spot_lands_in_the_only_zone_with_stock(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    set_spot(cloud, ["cn-hangzhou-h", "cn-hangzhou-j"], 0)
    ess, group_id = _setup(cloud)
    set_desired(ess, cloud, group_id, 1)
    member = wait_for(lambda: in_service(ess, cloud, group_id))[0]
    assert (member.zone_id, member.spot_strategy) == ("cn-hangzhou-i", "SpotAsPriceGo")
    assert group_of(ess, cloud, group_id).spot_capacity == 1


def test_no_spot_anywhere_falls_back_then_returns_to_spot(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    set_spot(cloud, ZONES, 0)
    ess, group_id = _setup(cloud)
    set_desired(ess, cloud, group_id, 1)
    payg = wait_for(lambda: in_service(ess, cloud, group_id))[0]
    assert payg.spot_strategy == "NoSpot"
    fallback = wait_for(lambda: [a for a in activities(ess, cloud, group_id) if a.status_code == "Warning"])[0]
    assert "No spot stock" in fallback.status_message and "CompensateWithOnDemand" in fallback.status_message

    set_spot(cloud, ["cn-hangzhou-j"], 1)
    spot_in_service_seen = False
    deadline = time.monotonic() + 10
    while True:  # the pay-as-you-go member leaves only once its spot replacement is in service
        members = {m.instance_id: m for m in scaling_instances(ess, cloud, group_id)}
        spot = [m for m in members.values() if m.spot_strategy != "NoSpot"]
        spot_in_service_seen |= any(m.lifecycle_state == "InService" for m in spot)
        if payg.instance_id not in members:
            assert spot_in_service_seen
            break
        assert time.monotonic() < deadline, "the pay-as-you-go member was never replaced"
        time.sleep(0.02)
    assert [(m.zone_id, m.spot_strategy) for m in members.values()] == [("cn-hangzhou-j", "SpotAsPriceGo")]
    replaced = wait_for(lambda: [a for a in activities(ess, cloud, group_id)
                                 if "SpotAutoReplaceOnDemand" in a.cause and a.status_code == "Successful"])[0]
    assert replaced.destroyed_instances == [payg.instance_id]
    bill = cloud.admin("bill")
    assert set(bill["by_charge_type"]) == {"spot", "pay-as-you-go"}
    # Each entry says when its instance was launched and when it first ran (a resume's first milestones).
    assert all(entry["Start"] <= entry["RunningAt"] for entry in bill["entries"]), bill["entries"]


def test_without_compensation_the_scale_out_fails_until_stock_returns(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    set_spot(cloud, ZONES, 0)
    ess, group_id = _setup(cloud, compensate_with_on_demand=False)
    set_desired(ess, cloud, group_id, 1)
    failed = wait_for(lambda: [a for a in activities(ess, cloud, group_id) if a.status_code == "Failed"])
    assert len(failed) == 1 and "no spot stock" in failed[0].status_message
    assert scaling_instances(ess, cloud, group_id) == []
    set_spot(cloud, ["cn-hangzhou-h"], 1)
    member = wait_for(lambda: in_service(ess, cloud, group_id))[0]
    assert (member.zone_id, member.spot_strategy) == ("cn-hangzhou-h", "SpotAsPriceGo")
    assert len([a for a in activities(ess, cloud, group_id) if a.status_code == "Failed"]) == 1


def test_a_reclaim_notice_launches_the_replacement_before_the_kill(make_localcloud: Any) -> None:
    cloud = make_localcloud(time_scale=100)  # the 300 s notice lasts 3 real seconds
    ess, group_id = _setup(cloud, config={"spot_duration": 0})
    set_desired(ess, cloud, group_id, 1)
    doomed = wait_for(lambda: in_service(ess, cloud, group_id))[0].instance_id
    cloud.admin("reclaim", {"instance_id": doomed, "notice": 300})
    replacement = wait_for(lambda: [m for m in in_service(ess, cloud, group_id) if m.instance_id != doomed])[0]
    states = {m.instance_id: m.lifecycle_state for m in scaling_instances(ess, cloud, group_id)}
    assert states[doomed] == "Removing"  # still there: the kill comes at the end of the notice
    remedy = next(a for a in activities(ess, cloud, group_id) if replacement.instance_id in a.created_instances)
    assert f"The spot instance {doomed} is about to be reclaimed" in remedy.cause
    wait_for(lambda: doomed not in _ecs_instance_ids(cloud), timeout=15)
    assert [m.instance_id for m in scaling_instances(ess, cloud, group_id)] == [replacement.instance_id]


def test_a_released_member_is_replaced(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id = _setup(cloud)
    set_desired(ess, cloud, group_id, 1)
    first = wait_for(lambda: in_service(ess, cloud, group_id))[0].instance_id
    cloud.client("ecs").delete_instance(ecs_models.DeleteInstanceRequest(instance_id=first, force=True))
    second = wait_for(lambda: [m for m in in_service(ess, cloud, group_id) if m.instance_id != first])[0]
    cause = next(a.cause for a in activities(ess, cloud, group_id) if second.instance_id in a.created_instances)
    assert first in cause


def test_a_restart_in_the_middle_of_a_scale_out_finishes_it_without_launching_twice(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id = _setup(cloud)
    set_desired(ess, cloud, group_id, 2)
    launched = wait_for(lambda: [a for a in activities(ess, cloud, group_id) if a.created_instances], interval=0.02)
    assert launched[0].status_code == "InProgress"  # its instances are still pending
    cloud.restart()
    ess = cloud.client("ess")
    wait_for(lambda: len(in_service(ess, cloud, group_id)) == 2)
    activity = wait_for(lambda: [a for a in activities(ess, cloud, group_id)
                                 if a.scaling_activity_id == launched[0].scaling_activity_id
                                 and a.status_code == "Successful"])[0]
    assert sorted(activity.created_instances) == sorted(m.instance_id for m in scaling_instances(ess, cloud, group_id))
    assert _ecs_instance_ids(cloud) == set(activity.created_instances)
    assert len(activities(ess, cloud, group_id)) == 1


def test_desired_capacity_zero_releases_everything(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id = _setup(cloud)
    set_desired(ess, cloud, group_id, 3)
    wait_for(lambda: len(in_service(ess, cloud, group_id)) == 3)
    set_desired(ess, cloud, group_id, 0)
    wait_for(lambda: not scaling_instances(ess, cloud, group_id))
    assert _ecs_instance_ids(cloud) == set()
    scale_in = activities(ess, cloud, group_id)[0]
    assert scale_in.status_code == "Successful" and len(scale_in.destroyed_instances) == 3
    assert "from 3 to 0" in scale_in.cause
    assert group_of(ess, cloud, group_id).total_capacity == 0


def test_scale_in_removes_pay_as_you_go_first(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    set_spot(cloud, ZONES, 1)
    ess, group_id = _setup(cloud, zones=["cn-hangzhou-h"], spot_auto_replace_on_demand=False)
    set_desired(ess, cloud, group_id, 2)  # one spot, then no stock: one pay-as-you-go
    members = wait_for(lambda: len(in_service(ess, cloud, group_id)) == 2 and in_service(ess, cloud, group_id))
    assert sorted(m.spot_strategy for m in members) == ["NoSpot", "SpotAsPriceGo"]
    set_desired(ess, cloud, group_id, 1)
    left = wait_for(lambda: len(scaling_instances(ess, cloud, group_id)) == 1 and scaling_instances(ess, cloud,
                                                                                                     group_id))
    assert left[0].spot_strategy == "SpotAsPriceGo"


def test_priority_follows_the_vswitch_order_and_balance_spreads(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, priority = _setup(cloud, zones=["cn-hangzhou-j", "cn-hangzhou-h"], multi_azpolicy="PRIORITY")
    set_desired(ess, cloud, priority, 2)
    members = wait_for(lambda: len(in_service(ess, cloud, priority)) == 2 and in_service(ess, cloud, priority))
    assert {m.zone_id for m in members} == {"cn-hangzhou-j"}
    ess, balance = _setup(cloud, multi_azpolicy="BALANCE")
    set_desired(ess, cloud, balance, 3)
    members = wait_for(lambda: len(in_service(ess, cloud, balance)) == 3 and in_service(ess, cloud, balance))
    assert sorted(m.zone_id for m in members) == ZONES


def test_the_cheapest_spot_offer_wins_within_the_price_limit(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    for zone, price, capacity in (("cn-hangzhou-h", 3.0, 5), ("cn-hangzhou-i", 2.0, 0), ("cn-hangzhou-j", 2.5, 5)):
        cloud.admin("spot", {"zone": zone, "instance_type": INSTANCE_TYPE, "capacity": capacity, "price": price})
    ess, cheapest = _setup(cloud)
    set_desired(ess, cloud, cheapest, 1)
    member = wait_for(lambda: in_service(ess, cloud, cheapest))[0]
    assert (member.zone_id, member.spot_strategy) == ("cn-hangzhou-j", "SpotAsPriceGo")

    limits = [ess_models.CreateScalingConfigurationRequestSpotPriceLimits(instance_type=INSTANCE_TYPE,
                                                                          price_limit=2.4)]
    ess, limited = _setup(cloud, config={"spot_strategy": "SpotWithPriceLimit", "spot_price_limits": limits})
    set_desired(ess, cloud, limited, 1)
    member = wait_for(lambda: in_service(ess, cloud, limited))[0]
    assert member.spot_strategy == "NoSpot"  # every offer with stock is above the limit
