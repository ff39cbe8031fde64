"""ESS lifecycle hooks through the official SDK: the hook API, and the waits they put scale-ins and
scale-outs through (Removing:Wait, Pending:Wait) until CompleteLifecycleAction or the timeout.

The engine tests start at time scale 1 (a wait of 30 virtual seconds lasts 30 real ones, long enough
to observe) and speed the clock up (`time-scale`) when a timeout should pass.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ess20220222 import models as ess_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models

from localcloud.clock import parse_iso

from .ess_support import (
    Network,
    activities,
    api_error,
    create_configuration,
    create_group,
    enable,
    group_of,
    in_service,
    make_network,
    scaling_instances,
    set_desired,
    set_spot,
    unique,
    wait_for,
)

ZONES = ["cn-hangzhou-h", "cn-hangzhou-i"]
LONG = 21600  # a hook timeout no test waits out


@pytest.fixture(scope="module")
def ess(localcloud: Any) -> Any:
    return localcloud.client("ess")


@pytest.fixture(scope="module")
def net(localcloud: Any) -> Network:
    return make_network(localcloud, ZONES)


def _hook(ess: Any, group_id: str, transition: str, **fields: Any) -> str:
    return ess.create_lifecycle_hook(ess_models.CreateLifecycleHookRequest(
        scaling_group_id=group_id, lifecycle_transition=transition, **fields)).body.lifecycle_hook_id


def _hooks(ess: Any, cloud: Any, **query: Any) -> list[Any]:
    return ess.describe_lifecycle_hooks(ess_models.DescribeLifecycleHooksRequest(
        region_id=cloud.region, **query)).body.lifecycle_hooks


def _states(ess: Any, cloud: Any, group_id: str) -> dict[str, str]:
    return {m.instance_id: m.lifecycle_state for m in scaling_instances(ess, cloud, group_id)}


def _actions(ess: Any, cloud: Any, activity_id: str) -> list[Any]:
    return ess.describe_lifecycle_actions(ess_models.DescribeLifecycleActionsRequest(
        region_id=cloud.region, scaling_activity_id=activity_id)).body.lifecycle_actions


def _pending_action_of(ess: Any, cloud: Any, group_id: str, instance_id: str) -> Any:
    """The pending lifecycle action on an instance, found as the instance itself would find it."""
    running = ess.describe_scaling_activities(ess_models.DescribeScalingActivitiesRequest(
        region_id=cloud.region, scaling_group_id=group_id, status_code="InProgress")).body.scaling_activities
    for activity in running:
        for found in _actions(ess, cloud, activity.scaling_activity_id):
            if instance_id in found.instance_ids and found.lifecycle_action_status == "Pending":
                return found
    return None


def _complete(ess: Any, found: Any, result: str | None = None) -> None:
    ess.complete_lifecycle_action(ess_models.CompleteLifecycleActionRequest(
        lifecycle_hook_id=found.lifecycle_hook_id, lifecycle_action_token=found.lifecycle_action_token,
        lifecycle_action_result=result))


def _heartbeat(ess: Any, found: Any, seconds: int) -> None:
    ess.record_lifecycle_action_heartbeat(ess_models.RecordLifecycleActionHeartbeatRequest(
        lifecycle_hook_id=found.lifecycle_hook_id, lifecycle_action_token=found.lifecycle_action_token,
        heartbeat_timeout=seconds))


def _virtual_now(cloud: Any) -> float:
    return parse_iso(cloud.admin("status")["virtual_now"])


def _speed_up(cloud: Any, scale: float) -> None:
    cloud.admin("time-scale", {"scale": scale})


def _running_group(cloud: Any, desired: int, **group: Any) -> tuple[Any, str, list[str]]:
    """An enabled group with `desired` instances in service and no hooks yet."""
    net = make_network(cloud, ZONES)
    ess = cloud.client("ess")
    group_id = create_group(ess, cloud, net, ZONES, spot_auto_replace_on_demand=group.pop("replace", False), **group)
    enable(ess, cloud, group_id, create_configuration(ess, cloud, net, group_id))
    if desired:
        set_desired(ess, cloud, group_id, desired)
        wait_for(lambda: len(in_service(ess, cloud, group_id)) == desired, what=f"{desired} instances in service")
    return ess, group_id, [m.instance_id for m in in_service(ess, cloud, group_id)]


def _waiting(ess: Any, cloud: Any, group_id: str, state: str) -> str:
    """The one member in `state` (Removing:Wait or Pending:Wait), once there is one."""
    found = wait_for(lambda: [i for i, s in _states(ess, cloud, group_id).items() if s == state], what=state)
    assert len(found) == 1
    return found[0]


def _ecs_ids(cloud: Any) -> set[str]:
    found = cloud.client("ecs").describe_instances(ecs_models.DescribeInstancesRequest(
        region_id=cloud.region, page_size=100)).body.instances.instance
    return {i.instance_id for i in found}


def _group_agent(cloud: Any, group_id: str) -> Any:
    """An ESS client on the credentials of a role that may act on `group_id` only (as an instance role)."""
    ram, sts = cloud.client("ram"), cloud.client("sts")
    uid = sts.get_caller_identity().body.account_id
    role, policy = unique("agent"), unique("agent-policy")
    trust = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                            "Principal": {"RAM": [f"acs:ram::{uid}:root"]}}]}
    ram.create_role(ram_models.CreateRoleRequest(role_name=role, assume_role_policy_document=json.dumps(trust)))
    allowed = {"Version": "1", "Statement": [{
        "Effect": "Allow", "Resource": f"acs:ess:*:*:scalinggroup/{group_id}",
        "Action": ["ess:DescribeScalingInstances", "ess:DescribeScalingActivities", "ess:DescribeLifecycleActions",
                   "ess:CompleteLifecycleAction", "ess:RecordLifecycleActionHeartbeat"]}]}
    ram.create_policy(ram_models.CreatePolicyRequest(policy_name=policy, policy_document=json.dumps(allowed)))
    ram.attach_policy_to_role(ram_models.AttachPolicyToRoleRequest(policy_type="Custom", policy_name=policy,
                                                                   role_name=role))
    creds = sts.assume_role(sts_models.AssumeRoleRequest(role_arn=f"acs:ram::{uid}:role/{role.lower()}",
                                                         role_session_name="agent")).body.credentials
    return cloud.client("ess", creds.access_key_id, creds.access_key_secret, creds.security_token)


# -- the hook API ------------------------------------------------------------------------------

def test_create_describe_modify_and_delete_a_hook(ess: Any, localcloud: Any, net: Network) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    name = unique("drain")
    hook_id = _hook(ess, group_id, "SCALE_IN", lifecycle_hook_name=name)
    assert hook_id.startswith("ash-")
    hook = _hooks(ess, localcloud, scaling_group_id=group_id)[0]
    assert (hook.lifecycle_hook_id, hook.lifecycle_hook_name, hook.scaling_group_id) == (hook_id, name, group_id)
    assert (hook.lifecycle_transition, hook.default_result, hook.heartbeat_timeout) == ("SCALE_IN", "CONTINUE", 600)
    assert hook.lifecycle_hook_status == "Active"
    assert hook.notification_arn.startswith("acs:ess:") and hook.notification_arn.endswith(":null/null")

    ess.modify_lifecycle_hook(ess_models.ModifyLifecycleHookRequest(
        scaling_group_id=group_id, lifecycle_hook_name=name, heartbeat_timeout=3600, default_result="ABANDON",
        lifecycle_hook_status="InActive"))
    hook = _hooks(ess, localcloud, lifecycle_hook_ids=[hook_id])[0]
    assert (hook.heartbeat_timeout, hook.default_result, hook.lifecycle_hook_status) == (3600, "ABANDON", "InActive")
    assert [h.lifecycle_hook_id for h in _hooks(ess, localcloud, scaling_group_id=group_id,
                                                lifecycle_hook_name=name)] == [hook_id]

    ess.delete_lifecycle_hook(ess_models.DeleteLifecycleHookRequest(lifecycle_hook_id=hook_id))
    assert _hooks(ess, localcloud, scaling_group_id=group_id) == []
    err = api_error(ess.delete_lifecycle_hook, ess_models.DeleteLifecycleHookRequest(lifecycle_hook_id=hook_id))
    assert (err.code, err.status_code) == ("InvalidLifecycleHookId.NotExist", 400)


def test_a_hook_without_a_name_is_named_by_its_id(ess: Any, localcloud: Any, net: Network) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    hook_id = _hook(ess, group_id, "SCALE_OUT", heartbeat_timeout=30)
    hook = _hooks(ess, localcloud, lifecycle_hook_ids=[hook_id])[0]
    assert (hook.lifecycle_hook_name, hook.heartbeat_timeout) == (hook_id, 30)


@pytest.mark.parametrize(("fields", "code"), [
    ({"lifecycle_transition": None}, "MissingParameter.LifecycleTransition"),
    ({"lifecycle_transition": "SCALE_SIDEWAYS"}, "InvalidParameter.LifecycleTransition"),
    ({"heartbeat_timeout": 29}, "InvalidParameter.HeartbeatTimeout"),
    ({"heartbeat_timeout": 21601}, "InvalidParameter.HeartbeatTimeout"),
    ({"default_result": "ROLLBACK"}, "InvalidParameter.DefaultResult"),
    ({"lifecycle_hook_name": "-starts-with-a-hyphen"}, "InvalidParameter.LifecycleHookName"),
    ({"notification_arn": "acs:mns:cn-hangzhou:1234567890:queue/nowhere"}, "QueueNotExist"),
    ({"notification_arn": "not an arn"}, "InvalidNotificationArn"),
    # "If you specify this parameter, you must specify the NotificationArn parameter" (ESS's model).
    ({"notification_metadata": "drain"}, "MissingParameter.NotificationArn"),
])
def test_invalid_hooks_are_refused(ess: Any, localcloud: Any, net: Network, fields: dict, code: str) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    options = {"lifecycle_transition": "SCALE_IN", **fields}
    err = api_error(ess.create_lifecycle_hook, ess_models.CreateLifecycleHookRequest(
        scaling_group_id=group_id, **options))
    assert (err.code, err.status_code) == (code, 400)


def test_hook_names_are_unique_in_a_group_and_a_group_has_at_most_ten(ess: Any, localcloud: Any,
                                                                       net: Network) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    _hook(ess, group_id, "SCALE_IN", lifecycle_hook_name="drain")
    assert api_error(_hook, ess, group_id, "SCALE_OUT", lifecycle_hook_name="drain").code == \
        "InvalidLifecycleHookName.Duplicate"
    for _ in range(9):
        _hook(ess, group_id, "SCALE_OUT")
    assert api_error(_hook, ess, group_id, "SCALE_OUT").code == "QuotaExceeded.LifecycleHook"
    other = create_group(ess, localcloud, net, ZONES)
    assert _hook(ess, other, "SCALE_IN", lifecycle_hook_name="drain")


def test_unknown_groups_hooks_and_tokens_are_refused(ess: Any, localcloud: Any, net: Network) -> None:
    err = api_error(_hook, ess, "asg-nope", "SCALE_IN")
    assert (err.code, err.status_code) == ("InvalidScalingGroupId.NotFound", 404)
    group_id = create_group(ess, localcloud, net, ZONES)
    err = api_error(ess.modify_lifecycle_hook, ess_models.ModifyLifecycleHookRequest(
        scaling_group_id=group_id, lifecycle_hook_name="nope", heartbeat_timeout=60))
    assert err.code == "InvalidLifecycleHookName.NotExist"
    hook_id = _hook(ess, group_id, "SCALE_IN")
    err = api_error(ess.complete_lifecycle_action, ess_models.CompleteLifecycleActionRequest(
        lifecycle_hook_id=hook_id, lifecycle_action_token="aaaa-bbbbb-cccc-ddddd"))
    assert (err.code, err.status_code) == ("LifecycleHookIdAndLifecycleActionToken.Invalid", 400)
    err = api_error(ess.record_lifecycle_action_heartbeat, ess_models.RecordLifecycleActionHeartbeatRequest(
        lifecycle_hook_id=hook_id, lifecycle_action_token="aaaa-bbbbb-cccc-ddddd"))
    assert err.code == "LifecycleHookIdAndLifecycleActionToken.Invalid"


def test_deleting_a_group_deletes_its_hooks(ess: Any, localcloud: Any, net: Network) -> None:
    group_id = create_group(ess, localcloud, net, ZONES)
    hook_id = _hook(ess, group_id, "SCALE_IN")
    ess.delete_scaling_group(ess_models.DeleteScalingGroupRequest(region_id=localcloud.region,
                                                                  scaling_group_id=group_id))
    assert _hooks(ess, localcloud, lifecycle_hook_ids=[hook_id]) == []


# -- scale-in waits ----------------------------------------------------------------------------

def test_a_scale_in_waits_in_removing_wait_until_the_instance_completes_its_action(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id, members = _running_group(cloud, 2)
    _hook(ess, group_id, "SCALE_IN", heartbeat_timeout=LONG)
    set_desired(ess, cloud, group_id, 1)
    leaving = _waiting(ess, cloud, group_id, "Removing:Wait")
    assert leaving in members and leaving in _ecs_ids(cloud)  # still in the group, still running
    group = group_of(ess, cloud, group_id)
    assert (group.total_capacity, group.removing_wait_capacity, group.active_capacity) == (2, 1, 1)
    scale_in = next(a for a in activities(ess, cloud, group_id) if a.description.startswith("Remove"))
    assert scale_in.status_code == "InProgress"

    agent = _group_agent(cloud, group_id)  # the leaving instance's own role finds its token and completes
    found = _pending_action_of(agent, cloud, group_id, leaving)
    assert found.lifecycle_action_result == "CONTINUE" and found.instance_ids == [leaving]
    _complete(agent, found, "CONTINUE")
    wait_for(lambda: leaving not in _states(ess, cloud, group_id), what="the instance removed")
    assert leaving not in _ecs_ids(cloud)
    done = next(a for a in activities(ess, cloud, group_id) if a.scaling_activity_id == scale_in.scaling_activity_id)
    assert done.status_code == "Successful" and done.destroyed_instances == [leaving]
    assert [(a.lifecycle_action_status, a.lifecycle_action_result)
            for a in _actions(ess, cloud, scale_in.scaling_activity_id)] == [("Completed", "CONTINUE")]
    assert [m.instance_id for m in in_service(ess, cloud, group_id)] == [m for m in members if m != leaving]


def test_an_instance_role_acts_on_its_own_group_only(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id, _ = _running_group(cloud, 0)
    ess, other_id, _ = _running_group(cloud, 0)
    other_hook = _hook(ess, other_id, "SCALE_IN")
    agent = _group_agent(cloud, group_id)
    assert scaling_instances(agent, cloud, group_id) == []
    err = api_error(scaling_instances, agent, cloud, other_id)
    assert (err.code, err.status_code) == ("Forbidden.RAM", 403)
    err = api_error(agent.complete_lifecycle_action, ess_models.CompleteLifecycleActionRequest(
        lifecycle_hook_id=other_hook, lifecycle_action_token="aaaa-bbbbb-cccc-ddddd"))
    assert (err.code, err.status_code) == ("Forbidden.RAM", 403)


def test_the_default_result_applies_when_the_wait_times_out(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id, _ = _running_group(cloud, 1)
    _hook(ess, group_id, "SCALE_IN", heartbeat_timeout=30, default_result="ABANDON")
    set_desired(ess, cloud, group_id, 0)
    leaving = _waiting(ess, cloud, group_id, "Removing:Wait")
    _speed_up(cloud, 100)  # the 30 s wait passes in 0.3 real seconds
    wait_for(lambda: not scaling_instances(ess, cloud, group_id), what="the instance removed")
    assert leaving not in _ecs_ids(cloud)  # ABANDON on a scale-in removes the instance too
    scale_in = next(a for a in activities(ess, cloud, group_id) if a.description.startswith("Remove"))
    assert scale_in.status_code == "Successful" and "ABANDON" in scale_in.status_message
    assert [(a.lifecycle_action_status, a.lifecycle_action_result)
            for a in _actions(ess, cloud, scale_in.scaling_activity_id)] == [("Timeout", "ABANDON")]


def test_heartbeats_extend_the_wait_within_six_hours_and_twenty_times(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id, _ = _running_group(cloud, 1)
    _hook(ess, group_id, "SCALE_IN", heartbeat_timeout=600)
    set_desired(ess, cloud, group_id, 0)
    leaving = _waiting(ess, cloud, group_id, "Removing:Wait")
    found = _pending_action_of(ess, cloud, group_id, leaving)
    seen = _virtual_now(cloud)
    err = api_error(_heartbeat, ess, found, 21600)  # the wait began before now: more than 6 h in all
    assert err.code == "LifecycleAction.TimeExceeded"
    for _ in range(20):
        _heartbeat(ess, found, 3000)
    assert api_error(_heartbeat, ess, found, 3000).code == "LifecycleAction.RecordTimesExceeded"

    _speed_up(cloud, 1000)
    wait_for(lambda: _virtual_now(cloud) > seen + 900, what="the hook's own 600 s to pass")
    assert _states(ess, cloud, group_id) == {leaving: "Removing:Wait"}
    wait_for(lambda: not scaling_instances(ess, cloud, group_id), what="the extended wait to time out")
    scale_in = next(a for a in activities(ess, cloud, group_id) if a.description.startswith("Remove"))
    assert [a.lifecycle_action_status for a in _actions(ess, cloud, scale_in.scaling_activity_id)] == ["Timeout"]


def test_abandon_ends_the_other_hooks_waits_and_removes_the_instance(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id, _ = _running_group(cloud, 1)
    first = _hook(ess, group_id, "SCALE_IN", heartbeat_timeout=LONG)
    second = _hook(ess, group_id, "SCALE_IN", heartbeat_timeout=LONG)
    set_desired(ess, cloud, group_id, 0)
    leaving = _waiting(ess, cloud, group_id, "Removing:Wait")
    scale_in = next(a for a in activities(ess, cloud, group_id) if a.description.startswith("Remove"))
    by_hook = {a.lifecycle_hook_id: a for a in _actions(ess, cloud, scale_in.scaling_activity_id)}
    assert set(by_hook) == {first, second}
    _complete(ess, by_hook[first], "ABANDON")
    wait_for(lambda: not scaling_instances(ess, cloud, group_id), what="the instance removed")
    assert leaving not in _ecs_ids(cloud)
    ended = {a.lifecycle_hook_id: a.lifecycle_action_status for a in _actions(ess, cloud,
                                                                                scale_in.scaling_activity_id)}
    assert ended == {first: "Completed", second: "Timeout"}


def test_rollback_keeps_the_instance_and_gives_the_desired_capacity_back(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id, members = _running_group(cloud, 2)
    _hook(ess, group_id, "SCALE_IN", heartbeat_timeout=LONG)
    set_desired(ess, cloud, group_id, 1)
    leaving = _waiting(ess, cloud, group_id, "Removing:Wait")
    _complete(ess, _pending_action_of(ess, cloud, group_id, leaving), "ROLLBACK")
    rejected = wait_for(lambda: [a for a in activities(ess, cloud, group_id) if a.status_code == "Rejected"],
                        what="the scale-in rolled back")[0]
    assert "ROLLBACK" in rejected.status_message
    assert group_of(ess, cloud, group_id).desired_capacity == 2
    assert sorted(m.instance_id for m in in_service(ess, cloud, group_id)) == sorted(members)


def test_remove_instances_waits_at_the_hook_unless_told_not_to(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id, members = _running_group(cloud, 2)
    hook_id = _hook(ess, group_id, "SCALE_IN", heartbeat_timeout=LONG)
    ess.remove_instances(ess_models.RemoveInstancesRequest(
        region_id=cloud.region, scaling_group_id=group_id, instance_ids=[members[0]]))
    assert _waiting(ess, cloud, group_id, "Removing:Wait") == members[0]
    assert group_of(ess, cloud, group_id).desired_capacity == 1
    ess.delete_lifecycle_hook(ess_models.DeleteLifecycleHookRequest(lifecycle_hook_id=hook_id))  # ends the wait
    wait_for(lambda: members[0] not in _states(ess, cloud, group_id), what="the instance removed")

    _hook(ess, group_id, "SCALE_IN", heartbeat_timeout=LONG)
    activity_id = ess.remove_instances(ess_models.RemoveInstancesRequest(
        region_id=cloud.region, scaling_group_id=group_id, instance_ids=[members[1]], decrease_desired_capacity=True,
        lifecycle_hook_context=ess_models.RemoveInstancesRequestLifecycleHookContext(
            disable_lifecycle_hook=True))).body.scaling_activity_id
    assert members[1] not in _states(ess, cloud, group_id)
    assert _actions(ess, cloud, activity_id) == []


# -- scale-out waits ---------------------------------------------------------------------------

def test_a_scale_out_hook_holds_new_instances_in_pending_wait(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id, _ = _running_group(cloud, 0)
    _hook(ess, group_id, "SCALE_OUT", heartbeat_timeout=LONG)
    set_desired(ess, cloud, group_id, 1)
    joining = _waiting(ess, cloud, group_id, "Pending:Wait")
    group = group_of(ess, cloud, group_id)
    assert (group.total_capacity, group.pending_wait_capacity, group.active_capacity) == (1, 1, 0)
    member = scaling_instances(ess, cloud, group_id)[0]
    launch = next(a for a in activities(ess, cloud, group_id) if a.scaling_activity_id == member.scaling_activity_id)
    assert launch.status_code == "InProgress"
    found = _actions(ess, cloud, member.scaling_activity_id)[0]  # the new instance finds its token
    assert found.instance_ids == [joining] and found.lifecycle_action_status == "Pending"
    _complete(ess, found)  # no result given: the hook's DefaultResult (CONTINUE)
    wait_for(lambda: [m.instance_id for m in in_service(ess, cloud, group_id)] == [joining], what="in service")
    done = wait_for(lambda: [a for a in activities(ess, cloud, group_id)
                             if a.scaling_activity_id == launch.scaling_activity_id and a.status_code == "Successful"])
    assert done[0].created_instances == [joining]


def test_a_scale_out_abandoned_at_the_timeout_releases_the_new_instance(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id, _ = _running_group(cloud, 0)
    hook_id = _hook(ess, group_id, "SCALE_OUT", heartbeat_timeout=30, default_result="ABANDON")
    set_desired(ess, cloud, group_id, 1)
    abandoned = _waiting(ess, cloud, group_id, "Pending:Wait")
    ess.modify_lifecycle_hook(ess_models.ModifyLifecycleHookRequest(lifecycle_hook_id=hook_id,
                                                                    lifecycle_hook_status="InActive"))
    _speed_up(cloud, 100)
    replacement = wait_for(lambda: [m for m in in_service(ess, cloud, group_id) if m.instance_id != abandoned],
                           what="a new instance, launched without the inactive hook")[0]
    assert abandoned not in _ecs_ids(cloud)
    failed = next(a for a in activities(ess, cloud, group_id) if abandoned in a.created_instances)
    assert failed.status_code == "Failed" and "ABANDON" in failed.status_message
    assert _actions(ess, cloud, replacement.scaling_activity_id) == []


# -- which removals pass the scale-in hooks ------------------------------------------------------

def test_the_pay_as_you_go_instance_a_spot_instance_replaces_waits_at_the_hook(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    set_spot(cloud, ZONES, 0)
    ess, group_id, members = _running_group(cloud, 1, replace=True)
    payg = members[0]
    _hook(ess, group_id, "SCALE_IN", heartbeat_timeout=LONG)
    set_spot(cloud, ["cn-hangzhou-i"], 1)
    assert _waiting(ess, cloud, group_id, "Removing:Wait") == payg
    assert [m.spot_strategy for m in in_service(ess, cloud, group_id)] == ["SpotAsPriceGo"]
    _complete(ess, _pending_action_of(ess, cloud, group_id, payg))
    wait_for(lambda: payg not in _states(ess, cloud, group_id), what="the pay-as-you-go instance removed")
    replaced = wait_for(lambda: [a for a in activities(ess, cloud, group_id)
                                 if "SpotAutoReplaceOnDemand" in a.cause and a.status_code == "Successful"])[0]
    assert replaced.destroyed_instances == [payg]


def test_a_released_member_passes_no_hook(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    ess, group_id, members = _running_group(cloud, 1)
    _hook(ess, group_id, "SCALE_IN", heartbeat_timeout=LONG)
    cloud.client("ecs").delete_instance(ecs_models.DeleteInstanceRequest(instance_id=members[0], force=True))
    wait_for(lambda: [m for m in in_service(ess, cloud, group_id) if m.instance_id != members[0]],
             what="a replacement")
    assert not [a for a in activities(ess, cloud, group_id) if a.description.startswith("Remove")]
