"""Injected faults (`localcloud fault`): the RPC and OSS endpoints answer a share of their requests as
Alibaba Cloud does when it throttles or is overloaded, and the clients see Alibaba's own errors."""

from __future__ import annotations

import time
from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from Tea.exceptions import TeaException

from localcloud import cli
from plugins.module_utils.alicloud import AlicloudError, with_retries

from .oss_support import oss2_bucket, root_keys, unique, v2_client


def regions(cloud: Any) -> Any:
    return cloud.client("ecs").describe_regions(ecs_models.DescribeRegionsRequest())


def test_throttling_is_alibabas_answer_and_only_for_the_matching_actions(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    added = cloud.admin("fault", {"target": "api", "rate": 1, "match": "ecs:DescribeRegions", "seed": 1})["fault"]
    assert (added["code"], added["status"]) == ("Throttling.User", 400)
    with pytest.raises(TeaException) as info:
        regions(cloud)
    assert (info.value.code, info.value.statusCode) == ("Throttling.User", 400)
    assert info.value.message.startswith("code: 400, Request was denied due to user flow control.")
    # Another action, and the admin routes, are untouched.
    cloud.client("ecs").describe_zones(ecs_models.DescribeZonesRequest(region_id=cloud.region))
    ((listed,),) = [cloud.admin("fault-list")["faults"]]
    assert (listed["injected"], listed["active"]) == (1, True)
    (cleared,) = cloud.admin("fault-clear", {"id": added["id"]})["cleared"]
    assert cleared["id"] == added["id"]
    assert regions(cloud).body.regions.region
    assert cloud.admin("fault-list")["faults"] == []


def test_the_client_layer_rides_out_throttling_at_a_fifth_of_the_calls(make_localcloud: Any) -> None:
    """At 20 % (a seeded sequence) every call of the modules' client layer succeeds, with retries; at 100 %
    it gives up after its attempts and says what it saw."""
    cloud = make_localcloud()
    cloud.admin("fault", {"target": "api", "rate": 0.2, "match": "ecs:*", "seed": 7})
    for _ in range(40):
        with_retries(lambda: regions(cloud), "DescribeRegions", attempts=6, sleep=lambda _s: None)
    ((fault,),) = [cloud.admin("fault-list")["faults"]]
    assert 2 <= fault["injected"] <= 25, fault  # 40 calls and their retries, a fifth of them refused
    cloud.admin("fault-clear")
    cloud.admin("fault", {"target": "api", "rate": 1, "code": "ServiceUnavailable", "match": "ecs:*"})
    with pytest.raises(AlicloudError) as info:
        with_retries(lambda: regions(cloud), "DescribeRegions", attempts=3, sleep=lambda _s: None)
    assert (info.value.code, info.value.status) == ("ServiceUnavailable", 503)
    assert cloud.admin("fault-list")["faults"][0]["injected"] == 3


def test_oss_errors_and_latency_on_the_matching_keys(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    bucket = unique("faults")
    v2 = v2_client(cloud, root_keys(cloud))
    v2.put_bucket(oss.PutBucketRequest(bucket=bucket))
    store = oss2_bucket(cloud, root_keys(cloud), bucket)
    cloud.admin("fault", {"target": "oss", "rate": 1, "code": "SlowDown", "match": f"{bucket}/output/checkpoint-*"})
    with pytest.raises(oss2.exceptions.ServerError) as info:
        store.put_object("output/checkpoint-3/optimizer.pt", b"x")
    assert (info.value.status, info.value.code) == (503, "SlowDown")
    store.put_object("output/logging.jsonl", b"{}")  # another key
    assert store.get_object("output/logging.jsonl").read() == b"{}"
    cloud.admin("fault-clear")
    for code, status in (("InternalError", 500), ("ServiceUnavailable", 503), ("QpsLimitExceeded", 429)):
        cloud.admin("fault", {"target": "oss", "rate": 1, "code": code, "match": f"{bucket}/*"})
        with pytest.raises(oss2.exceptions.OssError) as info:
            store.get_object("output/logging.jsonl")
        assert (info.value.status, info.value.code) == (status, code)
        cloud.admin("fault-clear")
    cloud.admin("fault", {"target": "oss", "latency": 0.5, "match": f"{bucket}/*"})
    started = time.monotonic()
    assert store.get_object("output/logging.jsonl").read() == b"{}"
    assert time.monotonic() - started >= 0.5
    assert cloud.admin("fault-list")["faults"][0]["delayed"] == 1


def test_a_fault_ends_after_its_virtual_seconds_and_survives_a_restart(make_localcloud: Any) -> None:
    cloud = make_localcloud(time_scale=60)
    cloud.admin("fault", {"target": "api", "rate": 1, "match": "ecs:DescribeRegions", "duration": 600})
    cloud.restart()
    with pytest.raises(TeaException):
        regions(cloud)
    time.sleep(600 / 60 + 0.5)  # ten virtual minutes
    assert regions(cloud).body.regions.region
    assert cloud.admin("fault-list")["faults"][0]["active"] is False


@pytest.mark.parametrize(("argv", "message"), [
    (["add", "api", "--rate", "1.5"], "rate 1.5 is not between 0 and 1"),
    (["add", "oss", "--rate", "0.2", "--code", "Throttling.User"], "code 'Throttling.User' is not one oss answers"),
    (["add", "api"], "the fault does nothing"),
    (["add", "api", "--rate", "0.1", "--for", "0"], "duration 0.0 is not a positive number"),
    (["clear", "fault-none"], "no fault fault-none"),
    (["add", "api", "--kill"], "only oss and meta faults kill"),
    (["add", "meta", "--rate", "0.5"], "a meta fault kills the instance that sent a matching request: give --kill"),
    (["add", "oss", "--rate", "0.5", "--new"], "--new says which instances a kill strikes"),
    (["add", "oss", "--kill", "--code", "SlowDown"], "a kill fault answers nothing"),
    (["add", "oss", "--kill", "--limit", "0"], "limit 0 is not a positive number of strikes"),
    (["add", "net", "--instance", "i-bpnone"], "a network cut needs --for"),
    (["add", "net", "--for", "60"], "a network cut names the instance to cut off"),
    (["add", "net", "--instance", "i-bpnone", "--for", "60"], "i-bpnone"),
])
def test_bad_fault_settings_are_refused_with_what_is_allowed(localcloud: Any, capsys: Any, argv: list[str],
                                                             message: str) -> None:
    assert cli.main(["--state-dir", str(localcloud.state_dir), "fault", *argv]) == 1
    assert message in capsys.readouterr().err
    assert localcloud.admin("fault-list")["faults"] == []
