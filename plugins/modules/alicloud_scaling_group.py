#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_scaling_group
short_description: Manage a spot-first Auto Scaling group
description:
  - Creates, updates, enables, disables and deletes an Auto Scaling (ESS) group, found by its name,
    with every spot-first option of the console page the recipe uses - the multi-zone policy
    (C(COST_OPTIMIZED) launches the cheapest spot type and zone first), on-demand base capacity
    and percentage, spot instance pools, spot remedy (a replacement on the reclaim notice),
    pay-as-you-go compensation and the return to spot.
  - Sizes are checked before anything is created (min <= desired <= max).
options:
  name:
    description: The group name; it identifies the group.
    type: str
    required: true
    aliases: [scaling_group_name]
  min_size:
    description: Fewest instances. Required to create.
    type: int
  max_size:
    description: Most instances. Required to create.
    type: int
  desired_capacity:
    description: Instances the group keeps running.
    type: int
  vswitch_ids:
    description: vSwitches (one VPC, several zones); their order is their priority. Required to create.
    type: list
    elements: str
  multi_az_policy:
    description: How instances are spread over the zones.
    type: str
    choices: [PRIORITY, COST_OPTIMIZED, BALANCE, COMPOSABLE]
  on_demand_base_capacity:
    description: Pay-as-you-go instances the group keeps before any spot (0 for spot first).
    type: int
  on_demand_percentage_above_base_capacity:
    description: Share of pay-as-you-go instances above the base (0 for all spot).
    type: int
  spot_instance_pools:
    description: Cheapest instance types to spread spot instances over (1-10).
    type: int
  spot_instance_remedy:
    description: Launch a replacement when a spot instance gets its reclaim notice.
    type: bool
  compensate_with_on_demand:
    description: Launch pay-as-you-go instances when no spot capacity is found (C(COST_OPTIMIZED) only).
    type: bool
  spot_auto_replace_on_demand:
    description: Replace pay-as-you-go instances with spot once spot capacity is back.
    type: bool
  removal_policies:
    description: Which instances go first on a scale-in.
    type: list
    elements: str
  default_cooldown:
    description: Seconds between scaling activities.
    type: int
  active_scaling_configuration:
    description: The configuration (id or name) the group launches from; needed to enable a group.
    type: str
  force_delete:
    description: With O(state=absent), release the group's instances with it.
    type: bool
    default: false
  state:
    description:
      - V(present) creates or updates the group and leaves it enabled or disabled as it is;
        V(enabled) and V(disabled) also set that; V(absent) deletes it.
    type: str
    choices: [present, enabled, disabled, absent]
    default: present
  wait_timeout:
    description: Seconds to wait for a deleted group to disappear.
    type: int
    default: 300
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Create the spot-first scaling group over two zones
  alicloud_scaling_group:
    name: ess-lora-deepseek7b
    min_size: 0
    max_size: 1
    desired_capacity: 0
    vswitch_ids: "{{ vswitch_ids }}"
    multi_az_policy: COST_OPTIMIZED
    on_demand_base_capacity: 0
    on_demand_percentage_above_base_capacity: 0
    spot_instance_remedy: true
    compensate_with_on_demand: true
    spot_auto_replace_on_demand: true

- name: Enable the group with its configuration and start training (one instance)
  alicloud_scaling_group:
    name: ess-lora-deepseek7b
    desired_capacity: 1
    active_scaling_configuration: ess-config
    state: enabled
"""

RETURN = r"""
scaling_group:
  description: The group (empty when absent).
  returned: always
  type: dict
  contains:
    scaling_group_id: {description: The id., type: str, sample: asg-bp1abc}
    lifecycle_state: {description: Active or Inactive., type: str}
    active_scaling_configuration_id: {description: The configuration it launches from., type: str}
    min_size: {description: Fewest instances., type: int}
    max_size: {description: Most instances., type: int}
    desired_capacity: {description: Instances it keeps., type: int}
    total_capacity: {description: Instances it has., type: int}
    multi_az_policy: {description: The multi-zone policy., type: str}
    v_switch_ids: {description: The vSwitches., type: list, elements: str}
"""

from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_ess import (  # noqa: E402
    GROUP_GONE,
    find_configuration,
    find_group,
)

# option -> API field, for the fields compared and sent as they are.
FIELDS = {
    "min_size": "MinSize", "max_size": "MaxSize", "desired_capacity": "DesiredCapacity",
    "multi_az_policy": "MultiAZPolicy", "on_demand_base_capacity": "OnDemandBaseCapacity",
    "on_demand_percentage_above_base_capacity": "OnDemandPercentageAboveBaseCapacity",
    "spot_instance_pools": "SpotInstancePools", "spot_instance_remedy": "SpotInstanceRemedy",
    "compensate_with_on_demand": "CompensateWithOnDemand", "default_cooldown": "DefaultCooldown",
}


def current_value(group: dict[str, Any], field: str) -> Any:
    if field == "SpotAutoReplaceOnDemand":
        return (group.get("CapacityOptions") or {}).get(field, group.get(field))
    return group.get(field)


def check_sizes(params: dict[str, Any], group: dict[str, Any] | None) -> str | None:
    """The sizes after the change, checked: an error message or None."""
    def size(option: str, field: str) -> int | None:
        return params.get(option) if params.get(option) is not None else (group or {}).get(field)

    low, high = size("min_size", "MinSize"), size("max_size", "MaxSize")
    desired = size("desired_capacity", "DesiredCapacity")
    if low is None or high is None:
        return "min_size and max_size are required to create a scaling group."
    if low < 0 or high < 0:
        return "min_size and max_size must not be negative."
    if low > high:
        return f"min_size ({low}) is greater than max_size ({high})."
    if desired is not None and not low <= desired <= high:
        return f"desired_capacity ({desired}) must be between min_size ({low}) and max_size ({high})."
    pools = params.get("spot_instance_pools")
    if pools is not None and not 0 <= pools <= 10:
        return f"spot_instance_pools must be between 0 and 10; got {pools}."
    share = params.get("on_demand_percentage_above_base_capacity")
    if share is not None and not 0 <= share <= 100:
        return f"on_demand_percentage_above_base_capacity must be between 0 and 100; got {share}."
    return None


def group_changes(group: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The ModifyScalingGroup parameters that bring `group` to the options."""
    changes: dict[str, Any] = {}
    for option, field in FIELDS.items():
        if params.get(option) is not None and params[option] != current_value(group, field):
            changes[field] = params[option]
    wanted = params.get("spot_auto_replace_on_demand")
    if wanted is not None and wanted != current_value(group, "SpotAutoReplaceOnDemand"):
        changes["CapacityOptions"] = {"SpotAutoReplaceOnDemand": wanted}
    if params.get("vswitch_ids") and params["vswitch_ids"] != list(group.get("VSwitchIds") or []):
        changes["VSwitchIds"] = params["vswitch_ids"]
    if params.get("removal_policies") and params["removal_policies"] != list(group.get("RemovalPolicies") or []):
        changes["RemovalPolicies"] = params["removal_policies"]
    return changes


def create_params(module: AlicloudModule) -> dict[str, Any]:
    p = module.params
    params = {"RegionId": module.region, "ScalingGroupName": p["name"], "VSwitchIds": p["vswitch_ids"],
              "RemovalPolicies": p.get("removal_policies")}
    params.update({field: p.get(option) for option, field in FIELDS.items()})
    if p.get("spot_auto_replace_on_demand") is not None:
        params["CapacityOptions"] = {"SpotAutoReplaceOnDemand": p["spot_auto_replace_on_demand"]}
    return params


def resolve_configuration(module: AlicloudModule, group: dict[str, Any]) -> str | None:
    reference = module.params.get("active_scaling_configuration")
    if not reference:
        return None
    config = find_configuration(module, group["ScalingGroupId"], reference)
    if config is None:
        module.fail_json(msg=f"The scaling group {group['ScalingGroupName']} has no configuration {reference}; "
                             "create it first (alicloud_scaling_configuration).")
    return config["ScalingConfigurationId"]


def update_lifecycle(module: AlicloudModule, group: dict[str, Any], config_id: str | None) -> bool:
    state, active = module.params["state"], group.get("LifecycleState") == "Active"
    group_id = group["ScalingGroupId"]
    if state == "enabled" and not active:
        if not (config_id or group.get("ActiveScalingConfigurationId")):
            module.fail_json(msg=f"The scaling group {group['ScalingGroupName']} has no configuration to launch "
                                 "from; set active_scaling_configuration.")
        if not module.check_mode:
            module.call("ess", "EnableScalingGroup", {"ScalingGroupId": group_id,
                                                      "ActiveScalingConfigurationId": config_id})
        return True
    if state == "disabled" and active:
        if not module.check_mode:
            module.call("ess", "DisableScalingGroup", {"ScalingGroupId": group_id})
        return True
    return False


def ensure_absent(module: AlicloudModule, group: dict[str, Any] | None) -> None:
    if group is not None and not module.check_mode:
        module.call("ess", "DeleteScalingGroup", {"RegionId": module.region, "ScalingGroupId": group["ScalingGroupId"],
                                                  "ForceDelete": module.params["force_delete"]}, missing_ok=GROUP_GONE)
        module.wait(lambda: find_group(module, group_id=group["ScalingGroupId"]), lambda g: g is None,
                    timeout=module.params["wait_timeout"], what=f"the scaling group {group['ScalingGroupId']} "
                    "to be deleted")
    module.exit_resource(group is not None, "scaling_group", group, None)


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        name=dict(type="str", required=True, aliases=["scaling_group_name"]),
        min_size=dict(type="int"),
        max_size=dict(type="int"),
        desired_capacity=dict(type="int"),
        vswitch_ids=dict(type="list", elements="str"),
        multi_az_policy=dict(type="str", choices=["PRIORITY", "COST_OPTIMIZED", "BALANCE", "COMPOSABLE"]),
        on_demand_base_capacity=dict(type="int"),
        on_demand_percentage_above_base_capacity=dict(type="int"),
        spot_instance_pools=dict(type="int"),
        spot_instance_remedy=dict(type="bool"),
        compensate_with_on_demand=dict(type="bool"),
        spot_auto_replace_on_demand=dict(type="bool"),
        removal_policies=dict(type="list", elements="str"),
        default_cooldown=dict(type="int"),
        active_scaling_configuration=dict(type="str"),
        force_delete=dict(type="bool", default=False),
        state=dict(type="str", default="present", choices=["present", "enabled", "disabled", "absent"]),
        wait_timeout=dict(type="int", default=300),
    ))
    p = module.params
    if p["state"] != "absent":
        # Sizes are checked against the options alone first, so bad input fails before any call.
        problem = check_sizes(p, None) if p.get("min_size") is not None and p.get("max_size") is not None else None
        if problem:
            module.fail_json(msg=problem)
    module.check_region()
    before = find_group(module, name=p["name"])
    if p["state"] == "absent":
        ensure_absent(module, before)
    problem = check_sizes(p, before)
    if problem:
        module.fail_json(msg=problem)
    if before is None:
        if not p.get("vswitch_ids"):
            module.fail_json(msg="vswitch_ids is required to create a scaling group.")
        if module.check_mode:
            module.exit_resource(True, "scaling_group", None, {k: v for k, v in create_params(module).items()
                                                                  if v is not None})
        body = module.call("ess", "CreateScalingGroup", create_params(module))
        created = find_group(module, group_id=body["ScalingGroupId"])
        config_id = resolve_configuration(module, created)
        if config_id and p["state"] != "enabled":
            module.call("ess", "ModifyScalingGroup", {"ScalingGroupId": created["ScalingGroupId"],
                                                      "ActiveScalingConfigurationId": config_id})
        update_lifecycle(module, created, config_id)
        module.exit_resource(True, "scaling_group", None, find_group(module, group_id=body["ScalingGroupId"]))
    changes = group_changes(before, p)
    config_id = resolve_configuration(module, before)
    if config_id and config_id != before.get("ActiveScalingConfigurationId"):
        changes["ActiveScalingConfigurationId"] = config_id
    if changes and not module.check_mode:
        module.call("ess", "ModifyScalingGroup", {"ScalingGroupId": before["ScalingGroupId"], **changes})
    changed = bool(changes)
    changed |= update_lifecycle(module, before, config_id)
    after = before
    if changed:
        after = find_group(module, group_id=before["ScalingGroupId"]) if not module.check_mode else {
            **before, **{k: v for k, v in changes.items() if k != "CapacityOptions"}}
    module.exit_resource(changed, "scaling_group", before, after)


if __name__ == "__main__":
    main()
