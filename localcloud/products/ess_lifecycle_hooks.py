"""ESS 2022-02-22: lifecycle hooks and the lifecycle actions they start.

A hook holds the instances of its group's scale-outs (SCALE_OUT, Pending:Wait) or scale-ins
(SCALE_IN, Removing:Wait) for HeartbeatTimeout seconds (virtual). CompleteLifecycleAction ends a
wait early, RecordLifecycleActionHeartbeat extends it; the engine (`scaling`) applies the result.
localcloud has no MNS, OOS or EventBridge: a hook notifies no one, and an instance finds its token
with DescribeScalingActivities (InProgress) and DescribeLifecycleActions.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import ids, lifecycle_hooks, scaling_groups
from ..errors import ApiError, invalid
from ..params import Params
from ..registry import Request, action
from .ess_common import Doc, get_group, group_resource, page

if TYPE_CHECKING:
    from ..cloud import Cloud

TRANSITIONS = (lifecycle_hooks.SCALE_OUT, lifecycle_hooks.SCALE_IN)
DEFAULT_RESULTS = (lifecycle_hooks.CONTINUE, lifecycle_hooks.ABANDON)
ACTION_RESULTS = (lifecycle_hooks.CONTINUE, lifecycle_hooks.ABANDON, lifecycle_hooks.ROLLBACK)
ACTION_STATUSES = (lifecycle_hooks.PENDING, lifecycle_hooks.TIMEOUT, lifecycle_hooks.COMPLETED)
HOOK_STATUSES = ("Active", "InActive")
MAX_HOOKS = 10
MIN_TIMEOUT, MAX_TIMEOUT, DEFAULT_TIMEOUT = 30, 21600, 600
METADATA_LIMIT = 4096
NAME_PATTERN = re.compile(r"^[A-Za-z0-9\u4e00-\u9fa5][\w\u4e00-\u9fa5.\-]{1,63}$")
ARN_PATTERN = re.compile(r"^acs:(?P<service>[a-z]+):[\w-]*:\d*:(?P<kind>[\w-]+)/.+$")


# -- RAM resources: the scaling group of the hook or activity a call names -----------------------

def hook_group(cloud: Cloud, params: Params) -> str | None:
    """RAM locator of the hook actions: the group of the hook named by id, else `ScalingGroupId`."""
    hook_id = params.raw.get("LifecycleHookId") or params.raw.get("lifecycleHookId")
    hook = lifecycle_hooks.LIFECYCLE_HOOK.find(cloud.store, hook_id) if hook_id else None
    return group_resource(hook["ScalingGroupId"] if hook else params.raw.get("ScalingGroupId"))


def activity_group(cloud: Cloud, params: Params) -> str | None:
    """RAM locator of DescribeLifecycleActions: the group of the scaling activity."""
    activity_id = params.raw.get("ScalingActivityId")
    activity = scaling_groups.SCALING_ACTIVITY.find(cloud.store, activity_id) if activity_id else None
    return group_resource(activity["ScalingGroupId"] if activity else None)


# -- hooks -------------------------------------------------------------------------------------

def _no_notification(cloud: Cloud) -> str:
    """The NotificationArn that DescribeLifecycleHooks shows for a hook that notifies no one."""
    return f"acs:ess:{cloud.settings.region}:{cloud.account_uid}:null/null"


def _notification_arn(cloud: Cloud, arn: str) -> str:
    """Check a NotificationArn. Nothing here receives notifications: MNS queues and topics do not exist."""
    found = ARN_PATTERN.match(arn)
    if found is None or found["service"] not in ("mns", "oos", "eventbridge", "ess"):
        raise ApiError("InvalidNotificationArn", "The specified parameter notificationArn is invalid.")
    if arn == _no_notification(cloud) or (found["service"], found["kind"]) == ("ess", "null"):
        return _no_notification(cloud)
    if found["kind"] == "queue":
        raise ApiError("QueueNotExist", "The specified queue does not exist.")
    if found["kind"] == "topic":
        raise ApiError("TopicNotExist", "The specified topic does not exist.")
    raise ApiError("UnsupportedNotificationType.CurrentRegion", "The notificationType is not supported in the "
                   f"special region which scalingGroup belongs to ({cloud.settings.region} has no "
                   f"{found['service']} here).")


def _check_name(cloud: Cloud, group_id: str, name: str, hook_id: str) -> None:
    if not NAME_PATTERN.match(name):
        raise invalid("LifecycleHookName", "It is 2 to 64 characters long, starts with a letter or a digit and "
                      "contains only letters, digits, underscores (_), hyphens (-) and periods (.).")
    if any(h["LifecycleHookName"] == name and h["LifecycleHookId"] != hook_id
           for h in lifecycle_hooks.hooks_of(cloud.store, group_id)):
        raise ApiError("InvalidLifecycleHookName.Duplicate",
                       "The specified value of parameter lifecycleHookName is duplicated.")


def _fields(cloud: Cloud, params: Params) -> Doc:
    """The hook settings given in this request, validated."""
    found: Doc = {}
    if (transition := params.str("LifecycleTransition", choices=TRANSITIONS)) is not None:
        found["LifecycleTransition"] = transition
    if (result := params.str("DefaultResult", choices=DEFAULT_RESULTS)) is not None:
        found["DefaultResult"] = result
    if (timeout := params.int("HeartbeatTimeout", minimum=MIN_TIMEOUT, maximum=MAX_TIMEOUT)) is not None:
        found["HeartbeatTimeout"] = timeout
    if (arn := params.str("NotificationArn")) is not None:
        found["NotificationArn"] = _notification_arn(cloud, arn)
    if (metadata := params.str("NotificationMetadata")) is not None:
        if len(metadata) > METADATA_LIMIT:
            raise invalid("NotificationMetadata", f"It is at most {METADATA_LIMIT} characters long.")
        # "If you specify this parameter, you must specify the NotificationArn parameter" (the ESS 2022-02-22
        # model of CreateLifecycleHook and ModifyLifecycleHook); the code is localcloud's, in ESS's form.
        if metadata and found.get("NotificationArn", _no_notification(cloud)) == _no_notification(cloud):
            raise ApiError("MissingParameter.NotificationArn", "NotificationMetadata is given without a "
                           "NotificationArn: the metadata goes with the notifications of an MNS queue or topic or "
                           "an OOS template.")
        found["NotificationMetadata"] = metadata
    return found


def get_hook(cloud: Cloud, params: Params) -> Doc:
    """The hook a request names: by LifecycleHookId, or by ScalingGroupId and LifecycleHookName."""
    if hook_id := params.str("LifecycleHookId"):
        hook = lifecycle_hooks.LIFECYCLE_HOOK.find(cloud.store, hook_id)
        if hook is None:
            raise ApiError("InvalidLifecycleHookId.NotExist", f"The specified lifecycleHookId {hook_id} does not "
                           "exist.")
        return hook
    group_id, name = params.str("ScalingGroupId"), params.str("LifecycleHookName")
    if not group_id or not name:
        raise ApiError("MissingParameter", "Either LifecycleHookId, or ScalingGroupId and LifecycleHookName, "
                       "must be supplied.")
    get_group(cloud, group_id)
    for hook in lifecycle_hooks.hooks_of(cloud.store, group_id):
        if hook["LifecycleHookName"] == name:
            return hook
    raise ApiError("InvalidLifecycleHookName.NotExist", f"The specified lifecycleHookName {name} you provided "
                   "does not exist.")


@action("ess", "CreateLifecycleHook", resource=hook_group)
def create_lifecycle_hook(cloud: Cloud, req: Request) -> Doc:
    params = req.params
    group = get_group(cloud, params.str("ScalingGroupId", required=True))
    group_id = group["ScalingGroupId"]
    params.str("LifecycleTransition", required=True)
    if len(lifecycle_hooks.hooks_of(cloud.store, group_id)) >= MAX_HOOKS:
        raise ApiError("QuotaExceeded.LifecycleHook", "Lifecycle hook quota exceeded in the specified scaling "
                       f"group: {group_id} already has {MAX_HOOKS}.")
    hook_id = ids.new_id("ash", cloud.settings.region)
    hook: Doc = {
        "LifecycleHookId": hook_id,
        "ScalingGroupId": group_id,
        "LifecycleHookName": params.str("LifecycleHookName") or hook_id,
        "DefaultResult": lifecycle_hooks.CONTINUE,
        "HeartbeatTimeout": DEFAULT_TIMEOUT,
        "LifecycleHookStatus": "Active",
        "NotificationArn": _no_notification(cloud),
        "NotificationMetadata": "",
        "CreatedAt": cloud.clock.now(),
    }
    hook.update(_fields(cloud, params))
    _check_name(cloud, group_id, hook["LifecycleHookName"], hook_id)
    lifecycle_hooks.LIFECYCLE_HOOK.save(cloud.store, hook)
    return {"LifecycleHookId": hook_id}


@action("ess", "ModifyLifecycleHook", resource=hook_group)
def modify_lifecycle_hook(cloud: Cloud, req: Request) -> Doc:
    hook = get_hook(cloud, req.params)
    hook.update(_fields(cloud, req.params))
    if (status := req.params.str("LifecycleHookStatus", choices=HOOK_STATUSES)) is not None:
        hook["LifecycleHookStatus"] = status
    lifecycle_hooks.LIFECYCLE_HOOK.save(cloud.store, hook)
    return {}


@action("ess", "DeleteLifecycleHook", resource=hook_group)
def delete_lifecycle_hook(cloud: Cloud, req: Request) -> Doc:
    """Delete a hook; the waits it holds end at once (its DefaultResult applies)."""
    hook = get_hook(cloud, req.params)
    now = cloud.clock.now()
    for pending in lifecycle_hooks.pending_actions_of_hook(cloud.store, hook["LifecycleHookId"]):
        lifecycle_hooks.end(pending, lifecycle_hooks.TIMEOUT, pending["DefaultResult"], now)
        lifecycle_hooks.LIFECYCLE_ACTION.save(cloud.store, pending)
    lifecycle_hooks.LIFECYCLE_HOOK.delete(cloud.store, hook["LifecycleHookId"])
    return {}


def describe_hook(hook: Doc) -> Doc:
    return {k: v for k, v in hook.items() if k != "CreatedAt"}


@action("ess", "DescribeLifecycleHooks", resource=hook_group)
def describe_lifecycle_hooks(cloud: Cloud, req: Request) -> Doc:
    """By LifecycleHookIds (the other filters are then ignored), or by group (and name)."""
    params = req.params
    wanted_ids = set(params.list("LifecycleHookIds"))
    group_id, name = params.str("ScalingGroupId"), params.str("LifecycleHookName")
    if not wanted_ids and group_id:
        get_group(cloud, group_id)

    def matches(hook: Doc) -> bool:
        if wanted_ids:
            return hook["LifecycleHookId"] in wanted_ids
        return (group_id is None or hook["ScalingGroupId"] == group_id) and (
            name is None or hook["LifecycleHookName"] == name)

    hooks, paging = page(req, lifecycle_hooks.LIFECYCLE_HOOK.all(cloud.store, matches), default_size=50)
    return {**paging, "LifecycleHooks": [describe_hook(h) for h in hooks]}


# -- lifecycle actions -------------------------------------------------------------------------

def _pending_action(cloud: Cloud, hook_id: str, token: str) -> Doc:
    found = lifecycle_hooks.LIFECYCLE_ACTION.find(cloud.store, token)
    if found is None or found["LifecycleHookId"] != hook_id or \
            found["LifecycleActionStatus"] != lifecycle_hooks.PENDING:
        raise ApiError("LifecycleHookIdAndLifecycleActionToken.Invalid", "The specified lifecycleActionToken and "
                       "lifecycleHookId you provided does not match any in process lifecycle action.")
    return found


@action("ess", "CompleteLifecycleAction", resource=hook_group)
def complete_lifecycle_action(cloud: Cloud, req: Request) -> Doc:
    """End a wait early; without LifecycleActionResult the hook's DefaultResult applies."""
    params = req.params
    hook_id = params.str("LifecycleHookId", required=True)
    token = params.str("LifecycleActionToken", required=True)
    result = params.str("LifecycleActionResult", choices=ACTION_RESULTS)
    pending = _pending_action(cloud, hook_id, token)
    lifecycle_hooks.end(pending, lifecycle_hooks.COMPLETED, result or pending["DefaultResult"], cloud.clock.now())
    lifecycle_hooks.LIFECYCLE_ACTION.save(cloud.store, pending)
    cloud.wake()  # the engine goes on with the held instances now, not at its next round
    return {}


@action("ess", "RecordLifecycleActionHeartbeat", resource=hook_group)
def record_lifecycle_action_heartbeat(cloud: Cloud, req: Request) -> Doc:
    """Give a wait `heartbeatTimeout` more seconds from now (a wait lasts 6 h at most, 20 heartbeats)."""
    params = req.params
    hook_id = params.str("lifecycleHookId", required=True)
    token = params.str("lifecycleActionToken", required=True)
    timeout = params.int("heartbeatTimeout", DEFAULT_TIMEOUT, minimum=MIN_TIMEOUT, maximum=MAX_TIMEOUT)
    pending = _pending_action(cloud, hook_id, token)
    now = cloud.clock.now()
    started = pending["StartedAt"] if pending["StartedAt"] is not None else now
    if now + timeout - started > lifecycle_hooks.MAX_WAIT:
        raise ApiError("LifecycleAction.TimeExceeded", "The specified parameter heartbeatTime exceed lifecycleAction "
                       f"max suspend time ({lifecycle_hooks.MAX_WAIT} s from the start of the wait).")
    if pending["Heartbeats"] >= lifecycle_hooks.MAX_HEARTBEATS:
        raise ApiError("LifecycleAction.RecordTimesExceeded", "The specified lifecycleAction exceed lifecycleAction "
                       f"max record times ({lifecycle_hooks.MAX_HEARTBEATS}).")
    pending.update(StartedAt=started, Deadline=now + timeout, Heartbeats=pending["Heartbeats"] + 1)
    lifecycle_hooks.LIFECYCLE_ACTION.save(cloud.store, pending)
    return {}


def describe_action(found: Doc) -> Doc:
    return {
        "LifecycleActionToken": found["LifecycleActionToken"],
        "LifecycleHookId": found["LifecycleHookId"],
        "LifecycleActionStatus": found["LifecycleActionStatus"],
        "LifecycleActionResult": found["LifecycleActionResult"] or found["DefaultResult"],
        "InstanceIds": found["InstanceIds"],
    }


@action("ess", "DescribeLifecycleActions", resource=activity_group)
def describe_lifecycle_actions(cloud: Cloud, req: Request) -> Doc:
    params = req.params
    activity_id = params.str("ScalingActivityId", required=True)
    status = params.str("LifecycleActionStatus", choices=ACTION_STATUSES)
    size = params.int("MaxResults", 10, minimum=1, maximum=50) or 10
    start = _next_token(params.str("NextToken"))
    found = [a for a in lifecycle_hooks.actions_of_activity(cloud.store, activity_id)
             if status is None or a["LifecycleActionStatus"] == status]
    shown = found[start:start + size]
    following = start + size if start + size < len(found) else None
    return {"TotalCount": len(found), "MaxResults": size, "NextToken": str(following) if following else "",
            "LifecycleActions": [describe_action(a) for a in shown]}


def _next_token(text: str | None) -> int:
    if text is None:
        return 0
    if not text.isdigit():
        raise invalid("NextToken", "Pass the NextToken of the previous page.")
    return int(text)
