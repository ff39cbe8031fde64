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
