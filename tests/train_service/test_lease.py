"""The training lease (the agent's lease.py) and its cloud client (cloud.py) against localcloud's OSS and ECS."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from typing import Any

import oss2
import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from train_agent import cloud, group
from train_agent import lease as lease_module
from train_agent.lease import Lease, hold_lease
from train_agent.protocol import LEASE_WAIT_MARK
from train_agent.stopping import GracefulStop

from ..localcloud import ecs_support, ess_support
from ..localcloud.oss_support import allow, oss2_bucket, role_keys, root_keys, unique

KEY = "output/.train-lease"


@pytest.fixture
def bucket(localcloud: Any) -> str:
    name = unique("lease")
    oss2_bucket(localcloud, root_keys(localcloud), name).create_bucket()
    return name


def lease_for(localcloud: Any, bucket: str, holder: str, expiry: float = 60.0,
              exists: Any = lambda _holder: True) -> Any:
    keys = cloud.StaticCredentials(cloud.Keys(localcloud.access_key_id, localcloud.access_key_secret))
    oss = cloud.OssClient(localcloud.oss_endpoint, bucket, keys, localcloud.region)
    return Lease(oss, KEY, holder, expiry, exists)


def lease_record(localcloud: Any, bucket: str) -> dict[str, Any]:
    return json.loads(oss2_bucket(localcloud, root_keys(localcloud), bucket).get_object(KEY).read())


def test_one_instance_gets_the_lease_and_the_next_is_told_who_holds_it(localcloud, bucket) -> None:
    first = lease_for(localcloud, bucket, "i-first")
    second = lease_for(localcloud, bucket, "i-second")
    assert first.try_acquire() == (True, "created the lease")
    held, why = second.try_acquire()
    assert not held
    assert why.startswith("i-first holds the lease (heartbeat ")
    before = lease_record(localcloud, bucket)["heartbeat"]
    assert first.renew()
    assert lease_record(localcloud, bucket)["heartbeat"] >= before
    assert first.try_acquire() == (True, "this instance already held the lease")  # an agent restarted in place

    first.release()
    assert second.try_acquire() == (True, "created the lease")
    assert lease_record(localcloud, bucket)["holder"] == "i-second"
    first.release()  # no longer its lease: it stays
    assert lease_record(localcloud, bucket)["holder"] == "i-second"


def test_a_loaded_successor_announces_itself_to_the_holder_and_takes_it_back(localcloud, bucket) -> None:
    holder = lease_for(localcloud, bucket, "i-holder", expiry=2.0)
    successor = lease_for(localcloud, bucket, "i-successor", expiry=2.0)
    assert holder.try_acquire()[0]
    assert holder.successor() is None
    successor.announce()
    assert holder.successor() == "i-successor"
    assert successor.successor() is None  # its own announcement names no one else
    holder.withdraw()  # not its announcement: it stays
    assert holder.successor() == "i-successor"
    successor.withdraw()
    assert holder.successor() is None
    assert not oss2_bucket(localcloud, root_keys(localcloud), bucket).object_exists(KEY + ".next")
    # An announcement older than the expiry is a successor that stopped waiting (it died).
    successor.announce()
    time.sleep(3.2)  # the bucket's clock counts whole seconds
    assert holder.successor() is None


def test_of_instances_that_race_for_a_free_lease_exactly_one_gets_it(localcloud, bucket) -> None:
    leases = [lease_for(localcloud, bucket, f"i-racer{n}") for n in range(8)]
    results: dict[str, bool] = {}
    start = threading.Barrier(len(leases))

    def race(lease: Any) -> None:
        start.wait()
        results[lease.holder] = lease.try_acquire()[0]

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [holder for holder, held in results.items() if held]
    assert len(winners) == 1
    assert lease_record(localcloud, bucket)["holder"] == winners[0]


def test_a_lease_whose_holder_is_gone_is_taken_over_and_its_holder_learns_it(localcloud, bucket) -> None:
    gone = lease_for(localcloud, bucket, "i-reclaimed")
    assert gone.try_acquire()[0]
    replacement = lease_for(localcloud, bucket, "i-replacement", exists=lambda holder: False)
    assert replacement.try_acquire() == (True, "took the lease over from i-reclaimed: i-reclaimed no longer exists")
    assert not gone.renew()
    assert gone.holder_now() == "i-replacement"


def test_a_lease_with_an_old_heartbeat_is_taken_over(localcloud, bucket) -> None:
    """The heartbeat's age is the bucket's: the lease object's Last-Modified against the answer's Date."""
    silent = lease_for(localcloud, bucket, "i-silent")
    assert silent.try_acquire()[0]
    waiting = lease_for(localcloud, bucket, "i-waiting", expiry=2)
    assert waiting.try_acquire()[0] is False
    time.sleep(3.2)  # no renewal meanwhile
    held, why = waiting.try_acquire()
    assert held
    assert re.fullmatch(r"took the lease over from i-silent: its heartbeat is [34]s old \(expiry 2s\)", why), why


class SkewedClock:
    """The time module as an instance whose clock runs `ahead` seconds ahead (a boot before chrony) sees it."""

    def __init__(self, ahead: float) -> None:
        self.ahead = ahead

    def time(self) -> float:
        return time.time() + self.ahead

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_a_reader_whose_clock_runs_ahead_does_not_take_over_a_live_holder(localcloud, bucket, monkeypatch) -> None:
    """The holder writes its heartbeat with its own clock; a reader 120 s ahead would see it 120 s old and take
    the lease over from a live holder. The age is the bucket's, so no two instances' clocks have to agree."""
    holder = lease_for(localcloud, bucket, "i-holder")
    assert holder.try_acquire()[0]
    lease_for(localcloud, bucket, "i-waiter").announce()  # a loaded successor, its clock right
    monkeypatch.setattr(lease_module, "time", SkewedClock(120))
    ahead = lease_for(localcloud, bucket, "i-ahead", expiry=60)
    held, why = ahead.try_acquire()
    assert (held, why) == (False, "i-holder holds the lease (heartbeat 0s ago)")
    assert ahead.successor() == "i-waiter"  # a fresh announcement is fresh, whatever the reader's clock


def test_an_unreadable_lease_object_is_taken_over(localcloud, bucket) -> None:
    oss2_bucket(localcloud, root_keys(localcloud), bucket).put_object(KEY, b"not json")
    lease = lease_for(localcloud, bucket, "i-next")
    assert lease.try_acquire() == (True, "took the lease over from ?: the lease object is unreadable")


def test_oss_errors_carry_the_code_and_message_oss_gave(localcloud, bucket) -> None:
    keys = cloud.StaticCredentials(cloud.Keys("LTAI-not-a-key", "wrong"))
    oss = cloud.OssClient(localcloud.oss_endpoint, bucket, keys, localcloud.region)
    with pytest.raises(cloud.CloudError) as info:
        oss.get(KEY)
    assert (info.value.status, info.value.code) == (403, "InvalidAccessKeyId")
    # The forbid-overwrite refusal the lease relies on, as the agent's client sees it.
    root = cloud.StaticCredentials(cloud.Keys(localcloud.access_key_id, localcloud.access_key_secret))
    oss = cloud.OssClient(localcloud.oss_endpoint, bucket, root, localcloud.region)
    oss.put("output/once", b"1", forbid_overwrite=True)
    with pytest.raises(cloud.CloudError) as info:
        oss.put("output/once", b"2", forbid_overwrite=True)
    assert (info.value.status, info.value.code) == (409, "FileAlreadyExists")
    assert oss.get("output/once") == b"1"
    assert isinstance(oss2_bucket(localcloud, root_keys(localcloud), bucket).get_object("output/once"),
                      oss2.models.GetObjectResult)


def test_instance_exists_follows_ecs(localcloud) -> None:
    keys = cloud.StaticCredentials(cloud.Keys(localcloud.access_key_id, localcloud.access_key_secret))
    ecs = cloud.RpcClient(f"http://{localcloud.endpoint}", "2014-05-26", keys)
    net = ecs_support.make_network(localcloud, cidr="172.16.9.0/24")
    (instance_id,) = ecs_support.run(localcloud, net)
    ecs_support.wait_status(localcloud, instance_id, "Running")
    assert cloud.instance_exists(ecs, localcloud.region, instance_id)
    localcloud.client("ecs").delete_instance(ecs_models.DeleteInstanceRequest(instance_id=instance_id, force=True))
    assert not cloud.instance_exists(ecs, localcloud.region, instance_id)
    assert not cloud.instance_exists(ecs, localcloud.region, "i-neverexisted")
    with pytest.raises(cloud.CloudError) as info:
        ecs.call("NoSuchAction", RegionId=localcloud.region)
    assert info.value.code == "InvalidAction.NotFound"


def test_the_clients_sign_with_a_roles_sts_credentials_as_the_instance_has_them(localcloud, bucket) -> None:
    keys = role_keys(localcloud, allow(["ecs:DescribeInstances"], ["acs:ecs:*:*:instance/*"]),
                     allow(["oss:GetObject", "oss:PutObject", "oss:DeleteObject"], [f"acs:oss:*:*:{bucket}/output/*"]))
    sts = cloud.StaticCredentials(cloud.Keys(keys.access_key_id, keys.access_key_secret,
                                                           keys.security_token))
    ecs = cloud.RpcClient(f"http://{localcloud.endpoint}", "2014-05-26", sts)
    assert not cloud.instance_exists(ecs, localcloud.region, "i-neverexisted")
    with pytest.raises(cloud.CloudError) as info:
        ecs.call("DescribeSecurityGroups", RegionId=localcloud.region)
    assert info.value.code == "Forbidden.RAM"
    lease = Lease(cloud.OssClient(localcloud.oss_endpoint, bucket, sts, localcloud.region), KEY, "i-sts", 60,
                               lambda _holder: True)
    assert lease.try_acquire() == (True, "created the lease")
    lease.release()
    assert lease.holder_now() is None


def test_an_instance_finds_its_scale_in_and_completes_its_lifecycle_action(localcloud) -> None:
    """What the agent does on a scale-in: its group from its tags, Removing:Wait, how long the hook holds it
    (and more time asked for, within ESS's bounds), then CompleteLifecycleAction."""
    ess, group_id, member = ess_support.member_held_at_scale_in(localcloud, "cn-hangzhou-h", timeout=45)
    keys = cloud.StaticCredentials(cloud.Keys(localcloud.access_key_id, localcloud.access_key_secret))
    ecs = cloud.RpcClient(f"http://{localcloud.endpoint}", "2014-05-26", keys)
    assert group.scaling_group_of(ecs, localcloud.region, member.instance_id) == group_id
    scale_in = group.ScaleIn(cloud.RpcClient(f"http://{localcloud.endpoint}", "2022-02-22", keys),
                                    localcloud.region, group_id, member.instance_id)
    assert not scale_in.waiting()

    ess_support.set_desired(ess, localcloud, group_id, 0)
    ess_support.wait_for(scale_in.waiting, what="Removing:Wait")
    assert len(scale_in.pending_actions()) == 1
    assert scale_in.hook_timeout() == 45
    assert scale_in.heartbeat(60) == 1
    with pytest.raises(cloud.CloudError) as info:  # a wait lasts 6 hours at most from its start
        scale_in.heartbeat(21600)
    assert info.value.code == "LifecycleAction.TimeExceeded"
    assert cloud.instance_exists(ecs, localcloud.region, member.instance_id)  # held, still running
    assert scale_in.complete() == 1
    ess_support.wait_for(lambda: not cloud.instance_exists(ecs, localcloud.region, member.instance_id),
                         what="the removal after the action completed")


def test_the_agents_calls_ride_out_a_busy_cloud_and_say_when_they_give_up(localcloud, bucket, monkeypatch,
                                                                          caplog) -> None:
    """With a third of the lease's OSS requests and of DescribeInstances refused (localcloud's faults: OSS's
    503, ECS's Throttling.User), every call succeeds after retries, each logged; a cloud that refuses every
    attempt gets the error, and the log says the agent gave up."""
    monkeypatch.setattr(cloud, "RETRY_BASE", 0.01)  # retries milliseconds apart, not seconds
    keys = cloud.StaticCredentials(cloud.Keys(localcloud.access_key_id, localcloud.access_key_secret))
    ecs = cloud.RpcClient(f"http://{localcloud.endpoint}", "2014-05-26", keys)
    lease = lease_for(localcloud, bucket, "i-busy")
    caplog.set_level("WARNING", logger="train-agent")
    try:
        localcloud.admin("fault", {"target": "oss", "rate": 0.3, "code": "ServiceUnavailable",
                                   "match": f"{bucket}/*", "seed": 5})
        localcloud.admin("fault", {"target": "api", "rate": 0.3, "match": "ecs:DescribeInstances", "seed": 6})
        assert lease.try_acquire()[0]
        for _ in range(15):
            assert lease.renew() and lease.holder_now() == "i-busy"
            assert cloud.instance_exists(ecs, localcloud.region, "i-bpnotthere0000000000") is False
        assert all(fault["injected"] > 0 for fault in localcloud.admin("fault-list")["faults"])
        assert "OSS GET output/.train-lease: 503 ServiceUnavailable" in caplog.text
        assert "DescribeInstances: 400 Throttling.User: Request was denied due to user flow control." in caplog.text
        assert "retry 1/4 in" in caplog.text and "giving up" not in caplog.text
        localcloud.admin("fault-clear")
        localcloud.admin("fault", {"target": "oss", "rate": 1, "code": "QpsLimitExceeded", "match": f"{bucket}/*"})
        with pytest.raises(cloud.CloudError) as info:
            lease.renew()
        assert (info.value.status, info.value.code) == (429, "QpsLimitExceeded")
        assert "giving up after 5 attempts" in caplog.text
        assert localcloud.admin("fault-list")["faults"][0]["injected"] == 5
    finally:
        localcloud.admin("fault-clear")
    # What is not transient is not retried: another instance's lease is a 409, at once.
    assert lease_for(localcloud, bucket, "i-other").try_acquire()[0] is False


class ScriptedLease:
    """A lease whose answers are scripted: who holds it, tick by tick, then this instance."""

    def __init__(self, answers: list[tuple[bool, str]]) -> None:
        self.answers, self.looks, self.announced, self.withdrawn = list(answers), [], 0, 0
        self.holder = "i-waiting"

    def try_acquire(self) -> tuple[bool, str]:
        self.looks.append(time.monotonic())
        return self.answers.pop(0)

    def announce(self) -> None:
        self.announced += 1

    def withdraw(self) -> None:
        self.withdrawn += 1


def test_a_waiting_agent_names_each_holder_once_and_looks_fast_once_loaded(caplog) -> None:
    ages = [(False, f"i-old holds the lease (heartbeat {age}s ago)") for age in (0, 1, 0, 1)]
    lease = ScriptedLease([*ages, (False, "i-other holds the lease (heartbeat 0s ago)"), (True, "created the lease")])
    loaded = threading.Event()
    loaded.set()  # the trainer waits, loaded: the agent announces itself and looks every HANDOVER_POLL
    stop = GracefulStop()
    with caplog.at_level("INFO", logger="train-agent"):
        assert hold_lease(lease, stop, poll=5.0, loaded=loaded)
    waits = [r.getMessage() for r in caplog.records if r.getMessage().startswith(LEASE_WAIT_MARK)]
    assert waits == [f"{LEASE_WAIT_MARK}: i-old holds the lease (heartbeat 0s ago)",
                     f"{LEASE_WAIT_MARK}: i-other holds the lease (heartbeat 0s ago)"]
    assert lease.announced == 1 and lease.withdrawn == 0  # the caller takes it back once its trainer has the go
    gaps = [later - earlier for earlier, later in itertools.pairwise(lease.looks)]
    assert max(gaps) < 1.0, gaps  # not the 5 s `poll` of a wait whose trainer has not loaded
