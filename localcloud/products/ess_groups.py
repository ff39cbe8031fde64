"""ESS 2022-02-22: scaling groups (create, modify, enable, disable, delete, describe)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import ids, network, scaling, scaling_groups
from ..clock import iso_minutes
from ..errors import ApiError, invalid, missing
from ..registry import Request, action
from .ess_common import Doc, capacities, get_configuration, get_group, named_group, nested_params, page

if TYPE_CHECKING:
    from ..cloud import Cloud

MULTI_AZ_POLICIES = ("PRIORITY", "COST_OPTIMIZED", "BALANCE", "COMPOSABLE")
REMOVAL_POLICIES = ("OldestInstance", "NewestInstance", "OldestScalingConfiguration", "CustomPolicy")
MAX_VSWITCHES = 8
MAX_GROUPS = 50
MAX_SIZE = 2000
NAME_PATTERN = re.compile(r"^[\w\u4e00-\u9fa5][\w\u4e00-\u9fa5.\-]{1,63}$")


def _check_name(cloud: Cloud, name: str, group_id: str) -> None:
    if not NAME_PATTERN.match(name):
        raise invalid("ScalingGroupName", "It is 2 to 64 characters long, starts with a letter, digit or Chinese "
                      "character and contains only those, underscores (_), hyphens (-) and periods (.).")
    clash = scaling_groups.SCALING_GROUP.all(cloud.store, lambda g: g["ScalingGroupName"] == name
                                             and g["ScalingGroupId"] != group_id)
    if clash:
        raise ApiError("ScalingGroupName.Duplicate",
                       f"The specified value of parameter \"ScalingGroupName\" is duplicated: {name}.")


def _check_vswitches(cloud: Cloud, vswitch_ids: list[str]) -> str:
    """Validate the vSwitches of a group and return their VPC."""
    if not vswitch_ids:
        raise missing("VSwitchIds")
    if len(vswitch_ids) > MAX_VSWITCHES:
        raise invalid("VSwitchIds", f"A scaling group has at most {MAX_VSWITCHES} vSwitches.")
    if len(set(vswitch_ids)) != len(vswitch_ids):
        raise invalid("VSwitchIds", "A vSwitch is listed twice.")
    vpcs = set()
    for vswitch_id in vswitch_ids:
        vswitch = network.VSWITCH.find(cloud.store, vswitch_id)
        if vswitch is None:
            raise ApiError("InvalidVSwitchId.NotFound", f"The specified virtual switch {vswitch_id} does not exist.",
                           404)
        vpcs.add(vswitch.get("VpcId", ""))
    if len(vpcs) > 1:
        raise ApiError("InvalidVSwitchId.VPCMismatch", "The specified vSwitches are not in the same VPC: "
                       f"{', '.join(sorted(vpcs))}.")
    return vpcs.pop()


def _check_sizes(group: Doc) -> None:
    if group["MinSize"] > group["MaxSize"]:
        raise ApiError("InvalidParameter", f"The specified MinSize ({group['MinSize']}) is greater than MaxSize "
                       f"({group['MaxSize']}).")
    if not group["MinSize"] <= group["DesiredCapacity"] <= group["MaxSize"]:
        raise ApiError("InvalidParameter", f"The specified DesiredCapacity ({group['DesiredCapacity']}) must be "
                       f"between MinSize ({group['MinSize']}) and MaxSize ({group['MaxSize']}).")


def _spot_options(req: Request) -> Doc:
    """The spot and capacity fields given in this request (top level or under CapacityOptions)."""
    params, options = req.params, nested_params(req, "CapacityOptions")
    found: Doc = {}
    for name, maximum in (("OnDemandBaseCapacity", 1000), ("OnDemandPercentageAboveBaseCapacity", 100)):
        value = options.int(name, params.int(name, minimum=0, maximum=maximum), minimum=0, maximum=maximum)
        if value is not None:
            found[name] = value
    for name in ("CompensateWithOnDemand", "SpotAutoReplaceOnDemand"):
        value = options.bool(name, params.bool(name))
        if value is not None:
            found[name] = value
    if (mode := options.str("PriceComparisonMode", choices=("PricePerUnit", "PricePerVCpu"))) is not None:
        found["PriceComparisonMode"] = mode
    if (pools := params.int("SpotInstancePools", minimum=0, maximum=10)) is not None:
        found["SpotInstancePools"] = pools
    if (remedy := params.bool("SpotInstanceRemedy")) is not None:
        found["SpotInstanceRemedy"] = remedy
    if (policy := params.str("MultiAZPolicy", choices=MULTI_AZ_POLICIES)) is not None:
        found["MultiAZPolicy"] = policy
    return found


def _removal_policies(req: Request) -> list[str] | None:
    policies = req.params.list("RemovalPolicies")
    if not policies:
        return None
    if len(policies) > 3 or any(p not in REMOVAL_POLICIES for p in policies):
        raise invalid("RemovalPolicies", f"At most 3 of: {', '.join(REMOVAL_POLICIES)}.")
    return policies


@action("ess", "CreateScalingGroup")
def create_scaling_group(cloud: Cloud, req: Request) -> Doc:
    params = req.params
    if len(scaling_groups.SCALING_GROUP.all(cloud.store)) >= MAX_GROUPS:
        raise ApiError("QuotaExceeded.ScalingGroup", f"The quota of {MAX_GROUPS} scaling groups in "
                       f"{cloud.settings.region} is used up; delete a scaling group first.")
    group_id = ids.new_id("asg", cloud.settings.region)
    vswitch_ids = params.list("VSwitchIds") or ([params.str("VSwitchId")] if params.str("VSwitchId") else [])
    min_size = params.int("MinSize", required=True, minimum=0, maximum=MAX_SIZE)
    now = cloud.clock.now()
    group: Doc = {
        "ScalingGroupId": group_id,
        "ScalingGroupName": params.str("ScalingGroupName") or group_id,
        "RegionId": cloud.settings.region,
        "LifecycleState": "Inactive",
        "MinSize": min_size,
        "MaxSize": params.int("MaxSize", required=True, minimum=0, maximum=MAX_SIZE),
        "DesiredCapacity": params.int("DesiredCapacity", min_size, minimum=0, maximum=MAX_SIZE),
        "DefaultCooldown": params.int("DefaultCooldown", 300, minimum=0, maximum=86400),
        "VSwitchIds": vswitch_ids,
        "VpcId": _check_vswitches(cloud, vswitch_ids),
        "MultiAZPolicy": "PRIORITY",
        "OnDemandBaseCapacity": 0,
        "OnDemandPercentageAboveBaseCapacity": 0,
        "SpotInstancePools": 0,
        "SpotInstanceRemedy": False,
        "CompensateWithOnDemand": True,
        "SpotAutoReplaceOnDemand": False,
        "PriceComparisonMode": "PricePerUnit",
        "RemovalPolicies": _removal_policies(req) or ["OldestScalingConfiguration", "OldestInstance"],
        "GroupDeletionProtection": bool(params.bool("GroupDeletionProtection", False)),
        "Tags": [{"Key": t["Key"], "Value": t.get("Value", ""), "Propagate": t.get("Propagate", "false").lower()
                  == "true"} for t in params.objects("Tags") if t.get("Key")],
        "ActiveScalingConfigurationId": "",
        "CreatedAt": now,
        "CreationTime": iso_minutes(now),
        "ModificationTime": iso_minutes(now),
        "KnownMembers": [],
        "Replacements": {},
        "Remedied": [],
        "PendingCause": None,
        "LastFailure": None,
    }
    group.update(_spot_options(req))
    _check_name(cloud, group["ScalingGroupName"], group_id)
    _check_sizes(group)
    scaling_groups.SCALING_GROUP.save(cloud.store, group)
    return {"ScalingGroupId": group_id}


def _desired_change_cause(before: int, after: int) -> str:
    return (f"A user modified the Desired Capacity, changing the expected number of instances from {before} "
            f"to {after}.")


@action("ess", "ModifyScalingGroup", resource=named_group)
def modify_scaling_group(cloud: Cloud, req: Request) -> Doc:
    params = req.params
    group = get_group(cloud, params.str("ScalingGroupId", required=True))
    if group["LifecycleState"] == "Deleting":
        raise ApiError("IncorrectScalingGroupStatus",
                       "The current status of the specified scaling group does not support this action.")
    before = int(group["DesiredCapacity"])
    for name in ("MinSize", "MaxSize", "DesiredCapacity"):
        if (value := params.int(name, minimum=0, maximum=MAX_SIZE)) is not None:
            group[name] = value
    if (name := params.str("ScalingGroupName")) is not None:
        _check_name(cloud, name, group["ScalingGroupId"])
        group["ScalingGroupName"] = name
    if (cooldown := params.int("DefaultCooldown", minimum=0, maximum=86400)) is not None:
        group["DefaultCooldown"] = cooldown
    if vswitch_ids := params.list("VSwitchIds"):
        vpc = _check_vswitches(cloud, vswitch_ids)
        if vpc != group["VpcId"]:
            raise ApiError("InvalidVSwitchId.VPCMismatch", f"The vSwitches are in {vpc}; the scaling group is "
                           f"in {group['VpcId']}.")
        group["VSwitchIds"] = vswitch_ids
    if (config_id := params.str("ActiveScalingConfigurationId")) is not None:
        _check_own_configuration(cloud, group, config_id)
        group["ActiveScalingConfigurationId"] = config_id
    if (policies := _removal_policies(req)) is not None:
        group["RemovalPolicies"] = policies
    if (protection := params.bool("GroupDeletionProtection")) is not None:
        group["GroupDeletionProtection"] = protection
    group.update(_spot_options(req))
    _check_sizes(group)
    if int(group["DesiredCapacity"]) != before:
        group["PendingCause"] = _desired_change_cause(before, int(group["DesiredCapacity"]))
    group["ModificationTime"] = iso_minutes(cloud.clock.now())
    scaling_groups.SCALING_GROUP.save(cloud.store, group)
    if int(group["DesiredCapacity"]) != before:
        cloud.wake()  # ESS starts the scaling activity within seconds, not at the engine's next round
    return {}


def _check_own_configuration(cloud: Cloud, group: Doc, config_id: str) -> None:
    config = get_configuration(cloud, config_id)
    if config["ScalingGroupId"] != group["ScalingGroupId"]:
        raise ApiError("InvalidScalingConfigurationId.NotFound", f"The specified scaling configuration {config_id} "
                       f"does not belong to scaling group {group['ScalingGroupId']}.", 404)


@action("ess", "EnableScalingGroup", resource=named_group)
def enable_scaling_group(cloud: Cloud, req: Request) -> Doc:
    group = get_group(cloud, req.params.str("ScalingGroupId", required=True))
    config_id = req.params.str("ActiveScalingConfigurationId") or group.get("ActiveScalingConfigurationId")
    if not config_id:
        raise ApiError("MissingActiveScalingConfiguration", "An active scaling configuration for the specified "
                       "scaling group is not supplied: create one or pass ActiveScalingConfigurationId.")
    _check_own_configuration(cloud, group, config_id)
    if group["LifecycleState"] == "Deleting":
        raise ApiError("IncorrectScalingGroupStatus",
                       "The current status of the specified scaling group does not support this action.")
    group.update(LifecycleState="Active", ActiveScalingConfigurationId=config_id,
                 ModificationTime=iso_minutes(cloud.clock.now()))
    scaling_groups.SCALING_GROUP.save(cloud.store, group)
    return {}


@action("ess", "DisableScalingGroup", resource=named_group)
def disable_scaling_group(cloud: Cloud, req: Request) -> Doc:
    group = get_group(cloud, req.params.str("ScalingGroupId", required=True))
    if group["LifecycleState"] == "Deleting":
        raise ApiError("IncorrectScalingGroupStatus",
                       "The current status of the specified scaling group does not support this action.")
    group.update(LifecycleState="Inactive", ModificationTime=iso_minutes(cloud.clock.now()))
    scaling_groups.SCALING_GROUP.save(cloud.store, group)
    return {}


@action("ess", "SetGroupDeletionProtection", resource=named_group)
def set_group_deletion_protection(cloud: Cloud, req: Request) -> Doc:
    group = get_group(cloud, req.params.str("ScalingGroupId", required=True))
    protection = req.params.bool("GroupDeletionProtection")
    if protection is None:
        raise missing("GroupDeletionProtection")
    scaling_groups.SCALING_GROUP.update(cloud.store, group["ScalingGroupId"], GroupDeletionProtection=protection)
    return {}


@action("ess", "DeleteScalingGroup", resource=named_group)
def delete_scaling_group(cloud: Cloud, req: Request) -> Doc:
    group = get_group(cloud, req.params.str("ScalingGroupId", required=True))
    group_id = group["ScalingGroupId"]
    force = bool(req.params.bool("ForceDelete", False))
    if group.get("GroupDeletionProtection"):
        raise ApiError("Forbidden.GroupDeletionProtection", f"Deletion protection is on for {group_id}; turn it "
                       "off (SetGroupDeletionProtection) before deleting the group.", 403)
    if not force:
        if scaling.members(cloud, group_id):
            raise ApiError("InstanceInUse", f"The scaling group {group_id} still has instances; set its "
                           "DesiredCapacity to 0 first, or pass ForceDelete=true to release them with the group.")
        if any(a["StatusCode"] == "InProgress" for a in scaling_groups.activities_of(cloud.store, group_id)):
            raise ApiError("ScalingActivityInProgress", "You cannot delete a scaling group while there is a scaling "
                           "activity in progress for it; wait for it to end or pass ForceDelete=true.")
    scaling.release_all(cloud, group_id, reason=f"scaling group {group_id} deleted")
    scaling_groups.delete_group(cloud.store, group_id)
    return {}


def describe_group(cloud: Cloud, group: Doc) -> Doc:
    public = {k: v for k, v in group.items() if k not in (
        "CreatedAt", "KnownMembers", "Replacements", "Remedied", "PendingCause", "LastFailure", "Tags")}
    public.update(capacities(cloud, group))
    public.update(
        VSwitchId=group["VSwitchIds"][0] if group["VSwitchIds"] else "",
        CapacityOptions={k: group[k] for k in ("OnDemandBaseCapacity", "OnDemandPercentageAboveBaseCapacity",
                                               "CompensateWithOnDemand", "SpotAutoReplaceOnDemand",
                                               "PriceComparisonMode")},
        Tags=[{"TagKey": t["Key"], "TagValue": t["Value"], "Propagate": t["Propagate"]} for t in group["Tags"]],
        GroupType="ECS", HealthCheckType="ECS", HealthCheckTypes=["ECS"], EnableDesiredCapacity=True,
        SuspendedProcesses=[], SystemSuspended=False, IsElasticStrengthInAlarm=False, AzBalance=False,
        ScalingPolicy="release",
        AllocationStrategy="lowestPrice" if group["MultiAZPolicy"] == "COST_OPTIMIZED" else "priority",
    )
    return public


@action("ess", "DescribeScalingGroups")
def describe_scaling_groups(cloud: Cloud, req: Request) -> Doc:
    wanted_ids = set(req.params.list("ScalingGroupIds"))
    wanted_names = set(req.params.list("ScalingGroupNames"))
    if name := req.params.str("ScalingGroupName"):
        wanted_names.add(name)

    def matches(group: Doc) -> bool:
        return ((not wanted_ids or group["ScalingGroupId"] in wanted_ids)
                and (not wanted_names or group["ScalingGroupName"] in wanted_names))

    groups, paging = page(req, scaling_groups.SCALING_GROUP.all(cloud.store, matches))
    return {**paging, "ScalingGroups": [describe_group(cloud, g) for g in groups]}
