"""alicloud_spot_price_info against localcloud's spot market (DescribeSpotPriceHistory)."""

from __future__ import annotations

from .conftest import run_playbook, task

TYPE = "ecs.gn7i-c8g1.2xlarge"


def test_the_newest_spot_price_of_each_zone_and_the_pay_as_you_go_price(make_localcloud, tmp_path) -> None:
    cloud = make_localcloud()
    zones = cloud.admin("status")["zones"]
    cloud.admin("spot", {"zone": zones[0], "instance_type": TYPE, "price": 4.25})

    run = run_playbook(cloud, tmp_path, [
        task("every zone", "alicloud_spot_price_info", {"instance_type": TYPE}),
        task("one zone", "alicloud_spot_price_info", {"instance_type": TYPE, "zones": [zones[-1]]}),
        task("unknown type", "alicloud_spot_price_info", {"instance_type": "ecs.nothing"}, ignore_errors=True),
    ])

    assert run.returncode == 0, run.output[-3000:]
    every = {p["zone_id"]: p for p in run["every zone"]["prices"]}
    assert sorted(every) == sorted(zones) and run["every zone"]["currency"] == "CNY"
    assert every[zones[0]]["spot_price"] == 4.25  # the newest price, not the list price it replaced
    assert every[zones[-1]]["spot_price"] == 3.5 and {p["pay_as_you_go_price"] for p in every.values()} == {10.0}
    assert [p["zone_id"] for p in run["one zone"]["prices"]] == [zones[-1]]
    assert run["unknown type"]["failed"] and "ecs.nothing" in run["unknown type"]["msg"]
