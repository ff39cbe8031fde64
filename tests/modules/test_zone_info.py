"""alicloud_zone_info against localcloud: regions, zones and where an instance type is sold."""

from __future__ import annotations

from .conftest import run_playbook, task

TYPE = "ecs.gn7i-c8g1.2xlarge"


def test_the_region_its_zones_and_where_each_type_is_sold(localcloud, tmp_path) -> None:
    zones = localcloud.admin("status")["zones"]
    run = run_playbook(localcloud, tmp_path, [
        task("known", "alicloud_zone_info", {"instance_types": [TYPE, "ecs.nothing"]}),
        task("no types", "alicloud_zone_info", {}),
        task("other region", "alicloud_zone_info", {"region": "cn-beijing", "instance_types": [TYPE]}),
    ], "--check")
    assert run.returncode == 0, run.output[-3000:]
    known = run["known"]
    assert known["region_known"] and known["regions"] == [localcloud.region] and known["zones"] == zones
    assert known["instance_types"] == {zone: [TYPE] for zone in zones}  # the unknown type is sold nowhere
    assert run["no types"]["instance_types"] == {} and not run["known"]["changed"]
    other = run["other region"]
    assert not other["region_known"] and other["zones"] == [] and other["regions"] == [localcloud.region]


def test_spot_stock_is_read_with_the_spot_strategy(localcloud, tmp_path) -> None:
    """DescribeAvailableResource answers for pay-as-you-go stock unless asked with a SpotStrategy."""
    status = localcloud.admin("status")
    zones = status["zones"]
    (capacity,) = [row["capacity"] for row in status["market"]
                   if (row["zone"], row["instance_type"]) == (zones[0], TYPE)]
    localcloud.admin("spot", {"zone": zones[0], "instance_type": TYPE, "capacity": 0})
    try:
        run = run_playbook(localcloud, tmp_path, [
            task("spot", "alicloud_zone_info", {"instance_types": [TYPE], "spot_strategy": "SpotAsPriceGo"}),
            task("pay-as-you-go", "alicloud_zone_info", {"instance_types": [TYPE]}),
        ], "--check")
    finally:
        localcloud.admin("spot", {"zone": zones[0], "instance_type": TYPE, "capacity": capacity})
    assert run.returncode == 0, run.output[-3000:]
    assert run["spot"]["instance_types"] == {zone: [TYPE] for zone in zones}
    assert run["spot"]["spot_instance_types"] == {zone: [] if zone == zones[0] else [TYPE] for zone in zones}
    assert run["pay-as-you-go"]["spot_instance_types"] == {}


def test_each_product_is_called_on_its_own_endpoint(localcloud, tmp_path) -> None:
    """`endpoints` gives a product its own host (as Alibaba Cloud has one for each); `endpoint` stays every
    other product's. ECS on localcloud, every other product on a port where nothing listens: zone_info
    (ECS calls only) works; an unknown product name is refused before any call."""
    run = run_playbook(localcloud, tmp_path, [
        task("ecs on its own", "alicloud_zone_info",
             {"endpoint": "127.0.0.1:9", "endpoints": {"ecs": f"http://{localcloud.endpoint}"}, "api_retries": 0}),
        task("ecs on the dead port", "alicloud_zone_info", {"endpoint": "127.0.0.1:9", "api_retries": 0},
             ignore_errors=True),
        task("a misspelt product", "alicloud_zone_info", {"endpoints": {"ecs2": "ecs-vpc.cn-hangzhou.aliyuncs.com"}},
             ignore_errors=True),
    ], "--check")
    assert run.returncode == 0, run.output[-3000:]
    assert run["ecs on its own"]["region_known"]
    assert run["ecs on the dead port"]["failed"] and "127.0.0.1:9" in run["ecs on the dead port"]["msg"]
    assert run["a misspelt product"]["msg"] == (
        "endpoints names ecs2: give a host for any of ecs, ess, ram, vpc, sts, cms (OSS has oss_endpoint).")
