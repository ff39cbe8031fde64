"""Spot instances and the spot market through the official ECS SDK: stock, price limits, reclaims,
the protection period, availability and price history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as m

from localcloud import cli
from tests.conftest import LocalCloud, start

from .ecs_support import (
    GPU_TYPE,
    SMALL_TYPE,
    Network,
    api_error,
    describe_one,
    make_network,
    run,
    wait_for,
    wait_status,
)


@pytest.fixture(scope="module")
def market_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """A cloud of this module's own, so that changing the market disturbs no other test."""
    state_dir = tmp_path_factory.mktemp("market")
    yield LocalCloud(state_dir, start(state_dir, backend="records"))
    cli.down(state_dir)


@pytest.fixture
def cloud(make_localcloud: Any) -> Any:
    return make_localcloud()


@pytest.fixture(scope="module")
def net(localcloud: Any) -> Network:
    return make_network(localcloud, cidr="172.16.40.0/24")


def spot(**fields: Any) -> dict[str, Any]:
    return {"instance_type": GPU_TYPE, "spot_strategy": "SpotAsPriceGo", **fields}


def test_a_spot_instance_shows_its_spot_settings(localcloud: Any, net: Network) -> None:
    (instance_id,) = run(localcloud, net, **spot(spot_strategy="SpotWithPriceLimit", spot_price_limit=4.0,
                                                 spot_interruption_behavior="Terminate"))
    instance = describe_one(localcloud, instance_id)
    assert (instance.spot_strategy, instance.spot_price_limit, instance.spot_duration,
            instance.spot_interruption_behavior) == ("SpotWithPriceLimit", 4.0, 1, "Terminate")


def test_a_price_limit_below_the_market_is_refused(localcloud: Any, net: Network) -> None:
    err = api_error(run, localcloud, net, **spot(spot_strategy="SpotWithPriceLimit", spot_price_limit=1.0))
    assert err.code == "InvalidSpotPriceLimit.LowerThanPublicPrice"


def test_no_spot_stock_is_refused_and_shown(cloud: Any) -> None:
    net = make_network(cloud)
    cloud.admin("spot", {"zone": net.zone, "instance_type": GPU_TYPE, "capacity": 0})
    err = api_error(run, cloud, net, **spot())
    assert (err.code, err.status_code) == ("OperationDenied.NoStock", 403)
    run(cloud, net, instance_type=GPU_TYPE)  # pay-as-you-go is not limited by spot stock
    zones = cloud.client("ecs").describe_available_resource(m.DescribeAvailableResourceRequest(
        region_id=cloud.region, destination_resource="InstanceType", instance_charge_type="PostPaid",
        spot_strategy="SpotAsPriceGo", instance_type=GPU_TYPE)).body.available_zones.available_zone
    stock = {z.zone_id: z.available_resources.available_resource[0].supported_resources.supported_resource[0]
             for z in zones}
    assert (stock[net.zone].value, stock[net.zone].status, stock[net.zone].status_category) == (
        GPU_TYPE, "SoldOut", "WithoutStock")
    other = next(z for z in stock if z != net.zone)
    assert (stock[other].status, stock[other].status_category) == ("Available", "WithStock")


def test_min_amount_takes_what_stock_there_is(cloud: Any) -> None:
    net = make_network(cloud)
    cloud.admin("spot", {"zone": net.zone, "instance_type": GPU_TYPE, "capacity": 1})
    assert api_error(run, cloud, net, **spot(amount=2)).code == "OperationDenied.NoStock"
    assert len(run(cloud, net, **spot(amount=2, min_amount=1))) == 1
    assert api_error(run, cloud, net, **spot()).code == "OperationDenied.NoStock"


def test_a_reclaim_notice_locks_the_instance_then_it_is_gone(localcloud: Any, net: Network) -> None:
    (instance_id,) = run(localcloud, net, **spot(spot_duration=0))
    wait_status(localcloud, instance_id, "Running")
    localcloud.admin("reclaim", {"instance_id": instance_id, "notice": 2})
    instance = describe_one(localcloud, instance_id)
    assert [lock.lock_reason for lock in instance.operation_locks.lock_reason] == ["Recycling"]
    wait_for(lambda: describe_one(localcloud, instance_id) is None, timeout=30)


def test_the_protection_period_delays_the_kill(make_localcloud: Any) -> None:
    cloud = make_localcloud(time_scale=600)  # the 1 h protection period lasts 6 real seconds
    net = make_network(cloud)
    (instance_id,) = run(cloud, net, **spot(spot_duration=1))
    reclaim = cloud.admin("reclaim", {"instance_id": instance_id, "notice": 60})
    assert reclaim["clock"] == "virtual"
    time.sleep(1.5)  # 15 virtual minutes: inside the protection period
    instance = describe_one(cloud, instance_id)
    assert instance is not None and instance.operation_locks.lock_reason == []
    wait_for(lambda: (i := describe_one(cloud, instance_id)) is None or i.operation_locks.lock_reason, timeout=30)
    wait_for(lambda: describe_one(cloud, instance_id) is None, timeout=30)


def test_the_termination_time_is_on_the_instances_own_clock(make_localcloud: Any) -> None:
    """ECS's spot/termination-time is a moment an agent on the instance compares with its own clock: a notice
    of 1800 virtual seconds at a time scale of 60 ends 30 real seconds from now, not 30 virtual minutes."""
    cloud = make_localcloud(time_scale=60)
    net = make_network(cloud)
    (instance_id,) = run(cloud, net, **spot(spot_duration=0))
    asked = time.time()
    reclaim = cloud.admin("reclaim", {"instance_id": instance_id, "notice": 1800})
    ends = datetime.strptime(reclaim["termination_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    # Whole seconds, rounded down: at most a second early, never late.
    assert asked + 30 - 1 <= ends.timestamp() <= time.time() + 30
    virtual = datetime.strptime(reclaim["terminate_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert virtual.timestamp() - ends.timestamp() > 1000  # the virtual clock ran ahead of the instance's


def test_a_stop_interruption_keeps_the_instance_stopped(localcloud: Any, net: Network) -> None:
    (instance_id,) = run(localcloud, net, **spot(spot_duration=0, spot_interruption_behavior="Stop"))
    localcloud.admin("reclaim", {"instance_id": instance_id, "notice": 0})
    wait_status(localcloud, instance_id, "Stopped")


def test_spot_price_history_records_changes(market_cloud: Any) -> None:
    zone = f"{market_cloud.region}-i"
    market_cloud.admin("spot", {"zone": zone, "instance_type": GPU_TYPE, "price": 4.2})
    prices = market_cloud.client("ecs").describe_spot_price_history(m.DescribeSpotPriceHistoryRequest(
        region_id=market_cloud.region, network_type="vpc", instance_type=GPU_TYPE,
        zone_id=zone)).body.spot_prices.spot_price_type
    assert [p.spot_price for p in prices] == [3.5, 4.2]
    assert {(p.zone_id, p.instance_type, p.origin_price, p.network_type) for p in prices} == {
        (zone, GPU_TYPE, 10.0, "vpc")}
    assert all(p.timestamp.endswith("Z") for p in prices)


def test_spot_price_history_needs_an_instance_type(market_cloud: Any) -> None:
    err = api_error(market_cloud.client("ecs").describe_spot_price_history, m.DescribeSpotPriceHistoryRequest(
        region_id=market_cloud.region, network_type="vpc"))
    assert err.code.startswith("MissingParameter")


def test_available_zones_and_system_disks(market_cloud: Any) -> None:
    ecs = market_cloud.client("ecs")
    zones = ecs.describe_available_resource(m.DescribeAvailableResourceRequest(
        region_id=market_cloud.region, destination_resource="Zone", instance_type=SMALL_TYPE)).body
    found = [z.zone_id for z in zones.available_zones.available_zone]
    assert len(found) == 4 and all(z.startswith(market_cloud.region) for z in found)
    disks = ecs.describe_available_resource(m.DescribeAvailableResourceRequest(
        region_id=market_cloud.region, destination_resource="SystemDisk", zone_id=found[0])).body
    (zone,) = disks.available_zones.available_zone
    categories = {r.value for r in zone.available_resources.available_resource[0].supported_resources
                  .supported_resource}
    assert "cloud_essd" in categories


def test_spot_advice_lists_each_type(market_cloud: Any) -> None:
    zone = f"{market_cloud.region}-h"
    body = market_cloud.client("ecs").describe_spot_advice(m.DescribeSpotAdviceRequest(
        region_id=market_cloud.region, zone_id=zone, instance_types=[GPU_TYPE])).body
    (advice_zone,) = body.available_spot_zones.available_spot_zone
    (advice,) = advice_zone.available_spot_resources.available_spot_resource
    assert (advice_zone.zone_id, advice.instance_type, advice.average_spot_discount) == (zone, GPU_TYPE, 35)


def test_an_outbid_instance_gets_a_reclaim_notice(market_cloud: Any) -> None:
    net = make_network(market_cloud, zone=f"{market_cloud.region}-j")
    (instance_id,) = run(market_cloud, net, **spot(spot_strategy="SpotWithPriceLimit", spot_price_limit=4.0,
                                                   spot_duration=0))
    assert describe_one(market_cloud, instance_id).operation_locks.lock_reason == []
    market_cloud.admin("spot", {"zone": net.zone, "instance_type": GPU_TYPE, "price": 4.5})
    wait_for(lambda: describe_one(market_cloud, instance_id).operation_locks.lock_reason, timeout=30)
