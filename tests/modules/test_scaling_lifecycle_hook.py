"""alicloud_scaling_lifecycle_hook: create, idempotence, check mode, modify, validation, delete."""

from __future__ import annotations

from alibabacloud_ess20220222 import models as ess_models

from .conftest import task

GROUP = "it-hook"
HOOK = "it-hook-drain"
MODULE = "alicloud_scaling_lifecycle_hook"


def group_tasks():
    return [
        task("vpc", "alicloud_vpc", {"name": "it-hook-vpc"}, register="vpc"),
        task("vswitch", "alicloud_vswitch", {"vpc_id": "{{ vpc.vpc.vpc_id }}", "zone": "cn-hangzhou-j",
                                             "cidr_block": "172.16.1.0/24"}, register="vsw"),
        task("group", "alicloud_scaling_group", {
            "name": GROUP, "min_size": 0, "max_size": 1, "desired_capacity": 0,
            "vswitch_ids": ["{{ vsw.vswitch.v_switch_id }}"]}, register="group"),
    ]


def hook(step: str, group_id: str, **options):
    return task(step, MODULE, {"scaling_group_id": group_id, "name": HOOK, **options})


def described(localcloud, group_id: str) -> list[dict]:
    """The group's hooks as the official SDK reads them."""
    body = localcloud.client("ess").describe_lifecycle_hooks(ess_models.DescribeLifecycleHooksRequest(
        region_id=localcloud.region, scaling_group_id=group_id)).body
    return [h.to_map() for h in body.lifecycle_hooks or []]


def test_lifecycle_hook(playbook, localcloud):
    group_id = "{{ group.scaling_group.scaling_group_id }}"
    created = {"lifecycle_transition": "SCALE_IN", "heartbeat_timeout": 300, "default_result": "CONTINUE"}
    run = playbook([
        *group_tasks(),
        hook("create", group_id, **created),
        hook("again", group_id, **created),
        hook("modify in check mode", group_id, **{**created, "heartbeat_timeout": 900, "default_result": "ABANDON"})
        | {"check_mode": True},
    ], "--diff")
    assert run.returncode == 0, run.output[-3000:]
    group_id = run["group"]["scaling_group"]["scaling_group_id"]

    first = run["create"]
    assert first["changed"]
    assert first["hook"]["lifecycle_hook_name"] == HOOK and first["hook"]["lifecycle_hook_id"].startswith("ash-")
    assert first["hook"]["scaling_group_id"] == group_id and first["hook"]["heartbeat_timeout"] == 300
    assert first["diff"]["before"] == {} and first["diff"]["after"]["heartbeat_timeout"] == 300
    assert not run["again"]["changed"] and run["again"]["hook"] == first["hook"]

    check = run["modify in check mode"]
    assert check["changed"]
    assert check["hook"]["heartbeat_timeout"] == 900 and check["hook"]["default_result"] == "ABANDON"
    assert check["diff"]["before"]["heartbeat_timeout"] == 300
    assert check["diff"]["after"]["heartbeat_timeout"] == 900
    [hook_now] = described(localcloud, group_id)
    assert hook_now["LifecycleHookId"] == first["hook"]["lifecycle_hook_id"]
    assert (hook_now["LifecycleTransition"], hook_now["HeartbeatTimeout"], hook_now["DefaultResult"],
            hook_now["NotificationMetadata"]) == ("SCALE_IN", 300, "CONTINUE", "")

    modified = {"lifecycle_transition": "SCALE_OUT", "heartbeat_timeout": 900, "default_result": "ABANDON"}
    run = playbook([
        hook("modify", group_id, **modified),
        hook("modify again", group_id, **modified),
        hook("timeout too short", group_id, heartbeat_timeout=29, endpoint="127.0.0.1:9", api_retries=0)
        | {"ignore_errors": True},
        hook("timeout too long", group_id, heartbeat_timeout=21601) | {"ignore_errors": True},
    ])
    assert run.returncode == 0, run.output[-3000:]
    assert run["modify"]["changed"] and not run["modify again"]["changed"]
    assert run["modify"]["hook"]["lifecycle_hook_id"] == first["hook"]["lifecycle_hook_id"]
    [hook_now] = described(localcloud, group_id)
    assert hook_now["LifecycleHookId"] == first["hook"]["lifecycle_hook_id"]
    assert (hook_now["LifecycleTransition"], hook_now["HeartbeatTimeout"], hook_now["DefaultResult"],
            hook_now["NotificationMetadata"]) == ("SCALE_OUT", 900, "ABANDON", "")
    assert run["modify"]["hook"]["heartbeat_timeout"] == 900
    for step, value in (("timeout too short", 29), ("timeout too long", 21601)):
        failed = run[step]
        assert failed["failed"] and "error" not in failed, failed
        # an endpoint nobody listens on: any call would have failed with a connection error instead
        assert failed["msg"] == f"heartbeat_timeout must be between 30 and 21600 seconds; got {value}."
    [hook_now] = described(localcloud, group_id)
    assert hook_now["HeartbeatTimeout"] == 900

    run = playbook([
        hook("absent in check mode", group_id, state="absent") | {"check_mode": True},
        hook("absent", group_id, state="absent"),
        hook("absent again", group_id, state="absent"),
        task("missing group", MODULE, {"scaling_group_id": "asg-doesnotexist", "name": HOOK},
             ignore_errors=True),
        task("missing group absent", MODULE, {"scaling_group_id": "asg-doesnotexist", "name": HOOK,
                                              "state": "absent"}),
    ], "--diff")
    assert run.returncode == 0, run.output[-3000:]
    assert run["absent in check mode"]["changed"]
    assert run["absent"]["changed"] and run["absent"]["hook"] == {}
    assert run["absent"]["diff"]["before"]["lifecycle_hook_name"] == HOOK and run["absent"]["diff"]["after"] == {}
    assert not run["absent again"]["changed"]
    assert described(localcloud, group_id) == []
    missing = run["missing group"]
    assert missing["failed"]
    assert missing["msg"] == "No scaling group asg-doesnotexist; create it first (alicloud_scaling_group)."
    assert not run["missing group absent"]["changed"]

    done = playbook([task("delete group", "alicloud_scaling_group", {"name": GROUP, "state": "absent"})])
    assert done.returncode == 0, done.output[-3000:]
