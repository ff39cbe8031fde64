#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_scaling_lifecycle_hook
short_description: Manage a lifecycle hook of a scaling group
description:
  - Creates, updates in place and deletes a lifecycle hook of an Auto Scaling (ESS) group, found
    by its name in the group. A hook holds the instances of the group's scale-ins (V(SCALE_IN),
    C(Removing:Wait)) or scale-outs (V(SCALE_OUT), C(Pending:Wait)) for O(heartbeat_timeout)
    seconds, or until C(CompleteLifecycleAction) ends the wait; then O(default_result) applies.
  - O(heartbeat_timeout) is checked (30 to 21600 seconds) before any call.
  - The hook notifies no one (no MNS, OOS or EventBridge target); an instance finds its lifecycle
    action through C(DescribeScalingActivities) and C(DescribeLifecycleActions).
options:
  scaling_group_id:
    description: The id of the scaling group (C(asg-...)); with O(name) it identifies the hook.
    type: str
    required: true
  name:
    description: The hook name (C(LifecycleHookName)), unique in the group.
    type: str
    required: true
    aliases: [lifecycle_hook_name]
  lifecycle_transition:
    description: The scaling activities the hook holds.
    type: str
    choices: [SCALE_IN, SCALE_OUT]
    default: SCALE_IN
  heartbeat_timeout:
    description: Seconds a wait lasts before O(default_result) applies (30 to 21600).
    type: int
    default: 600
  default_result:
    description:
      - What happens when a wait times out. On a scale-in V(CONTINUE) removes the instance and
        V(ABANDON) keeps it; on a scale-out V(CONTINUE) adds the instance and V(ABANDON)
        releases it.
    type: str
    choices: [CONTINUE, ABANDON]
    default: CONTINUE
  state:
    description: Whether the hook should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Hold a removed training instance for ten minutes to save its checkpoint
  alicloud_scaling_lifecycle_hook:
    scaling_group_id: "{{ group.scaling_group.scaling_group_id }}"
    name: ess-lora-deepseek7b-drain
    lifecycle_transition: SCALE_IN
    heartbeat_timeout: 600
    default_result: CONTINUE

- name: Remove the hook
  alicloud_scaling_lifecycle_hook:
    scaling_group_id: "{{ group.scaling_group.scaling_group_id }}"
    name: ess-lora-deepseek7b-drain
    state: absent
"""

RETURN = r"""
hook:
  description: The lifecycle hook (empty when absent).
  returned: always
  type: dict
  contains:
    lifecycle_hook_id: {description: The id., type: str, sample: ash-bp1abc}
    lifecycle_hook_name: {description: The name., type: str}
    scaling_group_id: {description: The scaling group., type: str}
    lifecycle_transition: {description: The activities it holds., type: str, sample: SCALE_IN}
    heartbeat_timeout: {description: Seconds a wait lasts., type: int, sample: 600}
    default_result: {description: What a timed-out wait does., type: str, sample: CONTINUE}
    notification_metadata: {description: The metadata of its lifecycle actions., type: str}
    notification_arn: {description: Where it notifies (a null ARN when no one)., type: str}
    lifecycle_hook_status: {description: Active or InActive., type: str, sample: Active}
"""

from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_ess import find_group  # noqa: E402

MIN_TIMEOUT = 30
MAX_TIMEOUT = 21600
FIELDS = {
    "lifecycle_transition": "LifecycleTransition", "heartbeat_timeout": "HeartbeatTimeout",
    "default_result": "DefaultResult",
}
GONE = ("InvalidLifecycleHookId.NotExist", "InvalidLifecycleHookName.NotExist")


def find_hook(module: AlicloudModule, group_id: str, name: str) -> dict[str, Any] | None:
    body = module.call("ess", "DescribeLifecycleHooks", {
        "RegionId": module.region, "ScalingGroupId": group_id, "LifecycleHookName": name, "PageSize": 50}) or {}
    found = [h for h in body.get("LifecycleHooks") or [] if h.get("LifecycleHookName") == name]
    return found[0] if found else None


def wanted(params: dict[str, Any]) -> dict[str, Any]:
    """The hook settings the task gives. No NotificationMetadata: ESS takes it only with a NotificationArn (an MNS
    queue or topic, an OOS template), and the training's instances complete their own lifecycle actions."""
    return {field: params[option] for option, field in FIELDS.items() if params.get(option) is not None}


def hook_changes(hook: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    for field, value in wanted(params).items():
        current = hook.get(field)
        if value != current:
            changes[field] = value
    return changes


def ensure_present(module: AlicloudModule, group_id: str, hook: dict[str, Any] | None) -> tuple[bool, Any]:
    p = module.params
    if hook is None:
        params = {"ScalingGroupId": group_id, "LifecycleHookName": p["name"], **wanted(p)}
        if module.check_mode:
            return True, params
        module.call("ess", "CreateLifecycleHook", params)
        return True, find_hook(module, group_id, p["name"])
    changes = hook_changes(hook, p)
    if not changes:
        return False, hook
    if module.check_mode:
        return True, {**hook, **changes}
    module.call("ess", "ModifyLifecycleHook", {
        "RegionId": module.region, "LifecycleHookId": hook["LifecycleHookId"], **changes})
    return True, find_hook(module, group_id, p["name"])


def ensure_absent(module: AlicloudModule, hook: dict[str, Any] | None) -> bool:
    if hook is None:
        return False
    if not module.check_mode:
        module.call("ess", "DeleteLifecycleHook", {
            "RegionId": module.region, "LifecycleHookId": hook["LifecycleHookId"]}, missing_ok=GONE)
    return True


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        scaling_group_id=dict(type="str", required=True),
        name=dict(type="str", required=True, aliases=["lifecycle_hook_name"]),
        lifecycle_transition=dict(type="str", default="SCALE_IN", choices=["SCALE_IN", "SCALE_OUT"]),
        heartbeat_timeout=dict(type="int", default=600),
        default_result=dict(type="str", default="CONTINUE", choices=["CONTINUE", "ABANDON"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    ))
    p = module.params
    if not MIN_TIMEOUT <= p["heartbeat_timeout"] <= MAX_TIMEOUT:
        module.fail_json(msg=f"heartbeat_timeout must be between {MIN_TIMEOUT} and {MAX_TIMEOUT} seconds; "
                             f"got {p['heartbeat_timeout']}.")
    module.check_region()
    if find_group(module, group_id=p["scaling_group_id"]) is None:
        if p["state"] == "absent":
            module.exit_resource(False, "hook", None, None)
        module.fail_json(msg=f"No scaling group {p['scaling_group_id']}; create it first (alicloud_scaling_group).")
    before = find_hook(module, p["scaling_group_id"], p["name"])
    if p["state"] == "absent":
        module.exit_resource(ensure_absent(module, before), "hook", before, None)
    changed, after = ensure_present(module, p["scaling_group_id"], before)
    module.exit_resource(changed, "hook", before, after)


if __name__ == "__main__":
    main()
