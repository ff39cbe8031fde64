"""ESS 2022-02-22: the instances of a scaling group and its scaling activities."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .. import lifecycle_hooks, scaling, scaling_groups
from ..errors import ApiError, invalid
from ..registry import Request, action
from .ess_common import Doc, get_group, named_group, page

if TYPE_CHECKING:
    from ..cloud import Cloud

ACTIVITY_STATUSES = ("Successful", "Warning", "Failed", "InProgress", "Rejected")


def describe_member(cloud: Cloud, group: Doc, instance: Doc, now: float, waiting: dict[str, str]) -> Doc:
    state = scaling.lifecycle_state(group, instance, now, waiting)
    return {
        "InstanceId": instance["InstanceId"],
        "ScalingGroupId": group["ScalingGroupId"],
        "ScalingConfigurationId": group.get("ActiveScalingConfigurationId", ""),
        "ScalingActivityId": scaling.activity_of(cloud, instance["InstanceId"]),
        "LifecycleState": state,
        "HealthStatus": "Unhealthy" if state == "Stopped" else "Healthy",
        "CreationType": "AutoCreated",
        "Entrusted": True,
        "SpotStrategy": instance["SpotStrategy"],
        "ZoneId": instance["ZoneId"],
        "PrivateIpAddress": instance.get("PrivateIpAddress", ""),
        "CreationTime": instance["CreationTime"],
        "CreatedTime": instance["CreationTime"],
        "LoadBalancerWeight": 50,
        "WeightedCapacity": 1,
        "WarmupState": "NoNeedWarmup",
    }


@action("ess", "DescribeScalingInstances", resource=named_group)
def describe_scaling_instances(cloud: Cloud, req: Request) -> Doc:
    params = req.params
    now = cloud.clock.now()
    group_ids = [params.str("ScalingGroupId")] if params.str("ScalingGroupId") else \
        [g["ScalingGroupId"] for g in scaling_groups.SCALING_GROUP.all(cloud.store)]
    wanted_ids = set(params.list("InstanceIds"))
    states = set(params.list("LifecycleStates")) | ({params.str("LifecycleState")} - {None})
    creation = set(params.list("CreationTypes")) | ({params.str("CreationType")} - {None})
    health = params.str("HealthStatus")
    rows = []
    for group_id in group_ids:
        group = get_group(cloud, group_id)
        waiting = lifecycle_hooks.waiting_instances(cloud.store, group_id)
        for member in scaling.members(cloud, group_id):
            row = describe_member(cloud, group, member, now, waiting)
            if ((not wanted_ids or row["InstanceId"] in wanted_ids) and (not states or row["LifecycleState"] in states)
                    and (not creation or row["CreationType"] in creation)
                    and (health is None or row["HealthStatus"] == health)):
                rows.append(row)
    spot = sum(1 for r in rows if r["SpotStrategy"] != "NoSpot")
    shown, paging = page(req, rows)
    return {**paging, "TotalSpotCount": spot, "ScalingInstances": shown}


def describe_activity(activity: Doc) -> Doc:
    public = {k: v for k, v in activity.items() if k not in (
        "StartedAt", "AwaitingRemoval", "Warnings", "Abandoned", "Removal", "Lowered")}
    public.update(
        CreatedCapacity=len(activity["CreatedInstances"]),
        DestroyedCapacity=len(activity["DestroyedInstances"]),
        AutoCreatedCapacity=activity["TotalCapacity"],
        AttachedCapacity="0",
        ScalingInstanceNumber=len(activity["CreatedInstances"]) + len(activity["DestroyedInstances"]),
    )
    if public["EndTime"] is None:
        del public["EndTime"]
    return public


@action("ess", "DescribeScalingActivities", resource=named_group)
def describe_scaling_activities(cloud: Cloud, req: Request) -> Doc:
    params = req.params
    group_id = params.str("ScalingGroupId")
    wanted_ids = set(params.list("ScalingActivityIds"))
    if group_id is None and not wanted_ids:
        raise ApiError("MissingParameter", "Either ScalingGroupId or ScalingActivityIds is required.")
    if group_id is not None:
        get_group(cloud, group_id)
    status = params.str("StatusCode", choices=ACTIVITY_STATUSES)

    def matches(activity: Doc) -> bool:
        return ((group_id is None or activity["ScalingGroupId"] == group_id)
                and (not wanted_ids or activity["ScalingActivityId"] in wanted_ids)
                and (status is None or activity["StatusCode"] == status))

    # Newest first, as ESS lists them.
    activities = list(reversed(scaling_groups.SCALING_ACTIVITY.all(cloud.store, matches)))
    shown, paging = page(req, activities)
    return {**paging, "ScalingActivities": [describe_activity(a) for a in shown]}


def _hook_context(req: Request) -> Doc:
    """LifecycleHookContext (a JSON object): whether the removal skips all or some SCALE_IN hooks."""
    text = req.params.str("LifecycleHookContext")
    if text is None:
        return {"DisableLifecycleHook": False, "IgnoredLifecycleHookIds": []}
    try:
        context = json.loads(text)
    except ValueError:
        context = None
    if not isinstance(context, dict) or not isinstance(context.get("IgnoredLifecycleHookIds") or [], list):
        raise invalid("LifecycleHookContext", "It must be a JSON object with DisableLifecycleHook and "
                      "IgnoredLifecycleHookIds.")
    return {"DisableLifecycleHook": bool(context.get("DisableLifecycleHook", False)),
            "IgnoredLifecycleHookIds": [str(i) for i in context.get("IgnoredLifecycleHookIds") or []]}


@action("ess", "RemoveInstances", resource=named_group)
def remove_instances(cloud: Cloud, req: Request) -> Doc:
    params = req.params
    group = get_group(cloud, params.str("ScalingGroupId", required=True))
    group_id = group["ScalingGroupId"]
    if group["LifecycleState"] != "Active":
        raise ApiError("IncorrectScalingGroupStatus", f"The scaling group {group_id} is not enabled; enable it "
                       "before removing instances.")
    instance_ids = params.list("InstanceIds")
    if not instance_ids:
        raise ApiError("MissingParameter.InstanceIds", "The input parameter \"InstanceIds\" that is mandatory for "
                       "processing this request is not supplied.")
    member_ids = {m["InstanceId"] for m in scaling.members(cloud, group_id)}
    for instance_id in instance_ids:
        if instance_id not in member_ids:
            raise ApiError("InvalidInstanceId.NotFound", f"Instance \"{instance_id}\" does not exist in scaling "
                           f"group {group_id}.", 404)
    decrease = params.bool("DecreaseDesiredCapacity", True)
    desired = int(group["DesiredCapacity"]) - (len(instance_ids) if decrease else 0)
    if decrease and desired < int(group["MinSize"]):
        raise ApiError("IncorrectCapacity.MinSize", f"To remove {len(instance_ids)} instances, the total capacity "
                       f"will be lesser than the min size {group['MinSize']}.")
    context = _hook_context(req)
    cause = f"A user requested to remove instances from the scaling group: {', '.join(instance_ids)}."
    activity = scaling.new_activity(cloud, group, cause, f"Remove \"{len(instance_ids)}\" ECS instance(s)")
    if req.params.str("LifecycleHookContext") is not None:
        activity["LifecycleHookContext"] = context
    scaling.remove(cloud, group, activity, list(instance_ids), hooks=not context["DisableLifecycleHook"],
                   ignored=tuple(context["IgnoredLifecycleHookIds"]),
                   lowered=len(instance_ids) if decrease else 0)
    group = get_group(cloud, group_id)
    group["DesiredCapacity"] = desired
    # Removed on purpose: the engine must not read them as members that went away by themselves.
    group["KnownMembers"] = [i for i in group.get("KnownMembers", []) if i not in instance_ids]
    scaling_groups.SCALING_GROUP.save(cloud.store, group)
    return {"ScalingActivityId": activity["ScalingActivityId"]}
