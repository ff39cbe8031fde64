"""The records of ESS lifecycle hooks: the hooks of scaling groups and the lifecycle actions they start.

This module owns the `lifecycle_hook` and `lifecycle_action` records. A lifecycle action is one
hook's hold on the instances of one scaling activity; its token is its id. The instances wait
(Pending:Wait on a scale-out, Removing:Wait on a scale-in) until every action of the activity has
ended, by CompleteLifecycleAction or by timing out; the engine (`scaling`) then applies the result
and marks the actions applied. The ESS API and the engine go through the functions here.
"""

from __future__ import annotations

import uuid
from typing import Any

from .store import Kind, Store

Doc = dict[str, Any]

LIFECYCLE_HOOK = Kind("lifecycle_hook", "LifecycleHookId")
LIFECYCLE_ACTION = Kind("lifecycle_action", "LifecycleActionToken")

SCALE_OUT = "SCALE_OUT"
SCALE_IN = "SCALE_IN"
WAIT_STATES = {SCALE_OUT: "Pending:Wait", SCALE_IN: "Removing:Wait"}
CONTINUE, ABANDON, ROLLBACK = "CONTINUE", "ABANDON", "ROLLBACK"
PENDING, TIMEOUT, COMPLETED = "Pending", "Timeout", "Completed"
# A wait lasts at most 6 hours, heartbeats included, and takes at most 20 heartbeats.
MAX_WAIT = 21600
MAX_HEARTBEATS = 20


# -- hooks -------------------------------------------------------------------------------------

def hooks_of(store: Store, group_id: str) -> list[Doc]:
    """The lifecycle hooks of a scaling group, oldest first."""
    return LIFECYCLE_HOOK.all(store, lambda h: h["ScalingGroupId"] == group_id)


def active_hooks(store: Store, group_id: str, transition: str, ignored: tuple[str, ...] = ()) -> list[Doc]:
    """The hooks that hold the instances of a `transition` activity (Active ones, less `ignored`)."""
    return [h for h in hooks_of(store, group_id) if h["LifecycleTransition"] == transition
            and h["LifecycleHookStatus"] == "Active" and h["LifecycleHookId"] not in ignored]


# -- actions -----------------------------------------------------------------------------------

def hold(store: Store, hooks: list[Doc], activity: Doc, transition: str, instance_ids: list[str],
         now: float) -> list[Doc]:
    """Start one lifecycle action per hook on `instance_ids` of `activity`.

    A scale-in wait starts now. A scale-out wait starts once the new instances run (`start`).
    """
    actions = []
    for hook in hooks:
        action = {
            "LifecycleActionToken": str(uuid.uuid4()),
            "LifecycleHookId": hook["LifecycleHookId"],
            "ScalingGroupId": activity["ScalingGroupId"],
            "ScalingActivityId": activity["ScalingActivityId"],
            "LifecycleTransition": transition,
            "InstanceIds": list(instance_ids),
            "DefaultResult": hook["DefaultResult"],
            "HeartbeatTimeout": hook["HeartbeatTimeout"],
            "LifecycleActionStatus": PENDING,
            "LifecycleActionResult": None,
            "Heartbeats": 0,
            "StartedAt": None,
            "Deadline": None,
            "EndedAt": None,
            "Applied": False,
        }
        if transition == SCALE_IN:
            start(action, now)
        actions.append(LIFECYCLE_ACTION.save(store, action))
    return actions


def start(action: Doc, now: float) -> None:
    """Start the timer of a wait."""
    action.update(StartedAt=now, Deadline=now + action["HeartbeatTimeout"])


def end(action: Doc, status: str, result: str, at: float) -> None:
    """End a pending wait (Completed by the API, Timeout otherwise)."""
    action.update(LifecycleActionStatus=status, LifecycleActionResult=result, EndedAt=at)


def actions_of_activity(store: Store, activity_id: str) -> list[Doc]:
    """The lifecycle actions of a scaling activity, in the order they started."""
    return LIFECYCLE_ACTION.all(store, lambda a: a["ScalingActivityId"] == activity_id)


def open_actions(store: Store, group_id: str) -> list[Doc]:
    """The actions of a group whose result the engine has not applied yet."""
    return LIFECYCLE_ACTION.all(store, lambda a: a["ScalingGroupId"] == group_id and not a["Applied"])


def pending_actions_of_hook(store: Store, hook_id: str) -> list[Doc]:
    return LIFECYCLE_ACTION.all(store, lambda a: a["LifecycleHookId"] == hook_id
                                and a["LifecycleActionStatus"] == PENDING)


def waiting_instances(store: Store, group_id: str) -> dict[str, str]:
    """Instance id -> its wait state (Pending:Wait or Removing:Wait) for the members held by hooks."""
    return {instance_id: WAIT_STATES[a["LifecycleTransition"]]
            for a in open_actions(store, group_id) for instance_id in a["InstanceIds"]}


def outcome(transition: str, actions: list[Doc]) -> str:
    """The result of a wait that every action of it has ended.

    On a scale-in the first ABANDON or ROLLBACK decides (it ends the other hooks' waits early);
    otherwise the action that ended last decides.
    """
    if transition == SCALE_IN:
        stops = sorted((a for a in actions if a["LifecycleActionResult"] in (ABANDON, ROLLBACK)),
                       key=lambda a: a["EndedAt"])
        if stops:
            return stops[0]["LifecycleActionResult"]
    return max(actions, key=lambda a: a["EndedAt"])["LifecycleActionResult"]


# -- deletion ----------------------------------------------------------------------------------

def delete_group(store: Store, group_id: str) -> None:
    """Remove the hooks of a scaling group and their lifecycle actions."""
    with store.transaction():
        for action in LIFECYCLE_ACTION.all(store, lambda a: a["ScalingGroupId"] == group_id):
            LIFECYCLE_ACTION.delete(store, action["LifecycleActionToken"])
        for hook in hooks_of(store, group_id):
            LIFECYCLE_HOOK.delete(store, hook["LifecycleHookId"])
