"""The Auto Scaling engine: keeps every enabled scaling group at its desired capacity.

It runs on every engine tick. All of its state lives in the store, so a daemon restarted in the
middle of a scale-out finishes it without launching twice:
  - the members of a group are the instances whose `ScalingGroupId` names it;
  - the group record keeps `KnownMembers` (to tell why a member left), `Replacements` (spot
    instance -> the pay-as-you-go one it replaces once in service), `Remedied` (members under a
    reclaim notice already replaced), `PendingCause` (set by ModifyScalingGroup) and `LastFailure`;
  - every action is a `scaling_activity`; an InProgress one completes once its instances run;
  - with lifecycle hooks, the instances of a scale-out wait in Pending:Wait, and those of a scale-in
    (a lower desired capacity, RemoveInstances, the pay-as-you-go instance a spot instance replaces)
    in Removing:Wait, until their `lifecycle_action`s end (`lifecycle_hooks`); the activity stays
    InProgress meanwhile. Released or reclaimed members, and a ForceDelete, pass no hook.

Placement follows ESS's multi-zone policies over the group's vSwitches (their order is the
priority): COST_OPTIMIZED takes the cheapest spot offer with stock, PRIORITY the first vSwitch with
stock, BALANCE the zone with the fewest members.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import ids, instances, lifecycle_hooks, network, scaling_groups
from .clock import iso_minutes
from .errors import ApiError
from .registry import ticker

if TYPE_CHECKING:
    from .cloud import Cloud

log = logging.getLogger("localcloud.scaling")

Doc = dict[str, Any]

COST_OPTIMIZED = "COST_OPTIMIZED"
# Instance states that hold a place in the group (a Stopped member still counts, as on ESS).
HOLDING = ("Pending", "Starting", "Running", "Stopping", "Stopped")


# -- members -----------------------------------------------------------------------------------

def members(cloud: Cloud, group_id: str) -> list[Doc]:
    return instances.members_of(cloud.store, group_id)


def under_notice(instance: Doc, now: float) -> bool:
    """True once a spot member has received its reclaim notice."""
    if instance.get("ReclaimAt") is None:
        return False
    return bool(instance.get("OperationLocks")) or now >= instance.get("ReclaimNoticeAt", instance["ReclaimAt"])


def lifecycle_state(group: Doc, instance: Doc, now: float, waiting: dict[str, str] | None = None) -> str:
    """The ESS lifecycle state of a member (DescribeScalingInstances); `waiting`: members held by hooks."""
    held = (waiting or {}).get(instance["InstanceId"])
    if held == "Removing:Wait":
        return held
    if instance["Status"] in ("Pending", "Starting"):
        return "Pending"
    if held:
        return held
    if instance["Status"] == "Stopped":
        return "Stopped"
    if group.get("SpotInstanceRemedy") and under_notice(instance, now):
        return "Removing"
    return "InService"


def activity_of(cloud: Cloud, instance_id: str) -> str:
    """The scaling activity that created an instance ("" when none did)."""
    for activity in scaling_groups.SCALING_ACTIVITY.all(cloud.store,
                                                        lambda a: instance_id in a.get("CreatedInstances", [])):
        return activity["ScalingActivityId"]
    return ""


# -- activities --------------------------------------------------------------------------------

def new_activity(cloud: Cloud, group: Doc, cause: str, description: str, status: str = "InProgress",
                 message: str = "") -> Doc:
    now = cloud.clock.now()
    activity = {
        "ScalingActivityId": ids.new_id("asa", cloud.settings.region),
        "ScalingGroupId": group["ScalingGroupId"],
        "StatusCode": status,
        "StatusMessage": message,
        "Progress": 0 if status == "InProgress" else 100,
        "Cause": cause,
        "Description": description,
        "StartedAt": now,
        "StartTime": iso_minutes(now),
        "EndTime": None if status == "InProgress" else iso_minutes(now),
        "TotalCapacity": str(len(members(cloud, group["ScalingGroupId"]))),
        "CreatedInstances": [],
        "DestroyedInstances": [],
        "AwaitingRemoval": [],
        "Warnings": [],
    }
    scaling_groups.SCALING_ACTIVITY.save(cloud.store, activity)
    log.info("%s %s: %s (%s)", group["ScalingGroupId"], activity["ScalingActivityId"], description, cause)
    return activity


def finish_activity(cloud: Cloud, activity: Doc, status: str, message: str) -> None:
    activity.update(StatusCode=status, StatusMessage=message, Progress=100,
                    EndTime=iso_minutes(cloud.clock.now()),
                    TotalCapacity=str(len(members(cloud, activity["ScalingGroupId"]))))
    scaling_groups.SCALING_ACTIVITY.save(cloud.store, activity)


def _advance_activities(cloud: Cloud, group: Doc) -> None:
    """Complete InProgress activities whose new instances are in service (or gone).

    Activities held by lifecycle hooks wait; `_settle_lifecycle` ends their waits.
    """
    gid = group["ScalingGroupId"]
    held = {a["ScalingActivityId"] for a in lifecycle_hooks.open_actions(cloud.store, gid)}
    for activity in [a for a in scaling_groups.activities_of(cloud.store, gid)
                     if a["StatusCode"] == "InProgress" and a["ScalingActivityId"] not in held]:
        created = activity["CreatedInstances"]
        records = {i: instances.INSTANCE.find(cloud.store, i) for i in created}
        running = [i for i, r in records.items() if r is not None and r["Status"] == "Running"]
        gone = [i for i, r in records.items() if r is None]
        waiting = len(created) - len(running) - len(gone) + len(activity["AwaitingRemoval"])
        if waiting > 0:
            done = len(running) + len(gone)
            progress = int(100 * done / max(1, len(created) + len(activity["AwaitingRemoval"])))
            if progress != activity["Progress"]:
                activity["Progress"] = progress
                scaling_groups.SCALING_ACTIVITY.save(cloud.store, activity)
            continue
        abandoned = set(activity.get("Abandoned", []))
        warnings = list(activity["Warnings"]) + [f"The instance {i} was released before it came into service."
                                                 for i in gone if i not in abandoned]
        if gone and not running and created:
            finish_activity(cloud, activity, "Failed", " ".join(warnings))
        elif warnings:
            finish_activity(cloud, activity, "Warning", " ".join(warnings))
        else:
            finish_activity(cloud, activity, "Successful", f"\"{len(created)}\" ECS instances are added."
                            if created else "The scaling activity completed.")


# -- placement ---------------------------------------------------------------------------------

@dataclass(order=True)
class Placement:
    rank: tuple
    vswitch: Doc = field(compare=False)
    instance_type: str = field(compare=False)
    spot: bool = field(compare=False)
    price: float = field(compare=False)


def instance_types(config: Doc) -> list[str]:
    return list(config.get("InstanceTypes") or []) or [config["InstanceType"]]


def price_limit(config: Doc, instance_type: str) -> float | None:
    for limit in config.get("SpotPriceLimits", []):
        if limit["InstanceType"] == instance_type:
            return float(limit["PriceLimit"])
    return None


def group_vswitches(cloud: Cloud, group: Doc) -> list[Doc]:
    found = [network.VSWITCH.find(cloud.store, v) for v in group["VSwitchIds"]]
    return [v for v in found if v is not None]


def _rank(policy: str, price: float, vsw_order: int, type_order: int, zone_count: int) -> tuple:
    if policy == "PRIORITY":
        return (vsw_order, type_order)
    if policy == "BALANCE":
        return (zone_count, vsw_order, type_order)
    return (price, vsw_order, type_order)


def choose(cloud: Cloud, group: Doc, config: Doc, spot: bool, zone_counts: dict[str, int]) -> Placement | None:
    """The best (vSwitch, instance type) for one new instance, or None when spot has no stock."""
    best: Placement | None = None
    policy = group["MultiAZPolicy"]
    for vsw_order, vswitch in enumerate(group_vswitches(cloud, group)):
        zone = vswitch["ZoneId"]
        for type_order, itype in enumerate(instance_types(config)):
            try:
                offer = cloud.market.offer(zone, itype)
            except ApiError:
                continue  # a type the zone does not sell
            if spot:
                if cloud.market.spot_free(zone, itype) <= 0:
                    continue
                limit = price_limit(config, itype)
                if config["SpotStrategy"] == "SpotWithPriceLimit" and limit is not None and offer.spot_price > limit:
                    continue
                price = offer.spot_price
            else:
                price = offer.on_demand_price
            candidate = Placement(_rank(policy, price, vsw_order, type_order, zone_counts.get(zone, 0)),
                                  vswitch, itype, spot, price)
            if best is None or candidate < best:
                best = candidate
    return best


def on_demand_target(group: Doc, desired: int, config: Doc) -> int:
    """How many of `desired` instances are pay-as-you-go by the group's capacity options."""
    if config["SpotStrategy"] == "NoSpot":
        return desired
    if group["MultiAZPolicy"] != COST_OPTIMIZED:
        return 0
    base = min(desired, int(group.get("OnDemandBaseCapacity") or 0))
    above = desired - base
    return base + math.ceil(above * int(group.get("OnDemandPercentageAboveBaseCapacity") or 0) / 100)


def _free_address(cloud: Cloud, vswitch: Doc) -> str:
    """A free private address of a vSwitch (ECS keeps the first three and the last): the first that no
    instance has had, or else the one released longest ago."""
    cidr = vswitch.get("CidrBlock")
    if not cidr:
        return ""
    used = {i.get("PrivateIpAddress") for i in instances.in_vswitch(cloud.store, vswitch["VSwitchId"])}
    subnet = ipaddress.ip_network(cidr, strict=False)
    free = (str(address) for offset, address in enumerate(subnet.hosts())
            if offset >= 2 and address != subnet.broadcast_address - 1 and str(address) not in used)
    return next(iter(instances.choose_addresses(cloud.store, free, 1)), "")


def launch_spec(cloud: Cloud, group: Doc, config: Doc, placement: Placement) -> Doc:
    vswitch = placement.vswitch
    security_groups = list(config.get("SecurityGroupIds") or [])
    if not security_groups and config.get("SecurityGroupId"):
        security_groups = [config["SecurityGroupId"]]
    spec: Doc = {
        "ScalingGroupId": group["ScalingGroupId"],
        "ImageId": config["ImageId"],
        "InstanceType": placement.instance_type,
        "ZoneId": vswitch["ZoneId"],
        "VSwitchId": vswitch["VSwitchId"],
        "VpcId": vswitch.get("VpcId", group.get("VpcId", "")),
        "SecurityGroupIds": security_groups,
        "PrivateIpAddress": _free_address(cloud, vswitch),
        "SpotStrategy": config["SpotStrategy"] if placement.spot else "NoSpot",
        "RamRoleName": config.get("RamRoleName", ""),
        "UserData": config.get("UserData", ""),
        "KeyPairName": config.get("KeyPairName", ""),
        "Tags": [*config.get("Tags", []), {"Key": "acs:autoscaling:scalingGroupId", "Value": group["ScalingGroupId"]}],
        "InstanceName": config.get("InstanceName") or "ESS-asg-" + config["ScalingConfigurationName"],
        "InternetMaxBandwidthOut": config.get("InternetMaxBandwidthOut", 0),
        "SystemDisk": config.get("SystemDisk", {"Category": "cloud_essd", "Size": 40}),
    }
    if placement.spot:
        # Without a limit for this type the bid is capped at the pay-as-you-go price, as on ECS.
        limit = price_limit(config, placement.instance_type)
        if limit is None:
            limit = cloud.market.offer(vswitch["ZoneId"], placement.instance_type).on_demand_price
        spec.update(SpotPriceLimit=limit,
                    SpotDuration=config.get("SpotDuration", 1),
                    SpotInterruptionBehavior=config.get("SpotInterruptionBehavior", "Terminate"))
    return spec


# -- the reconcile loop ------------------------------------------------------------------------

@dataclass
class View:
    """One group's members, sorted by role, at one instant."""
    group: Doc
    now: float
    all: list[Doc]
    waiting: dict[str, str] = field(default_factory=dict)  # members held by lifecycle hooks -> wait state

    @property
    def replaced(self) -> set[str]:
        return set(self.group.get("Replacements", {}).values())

    @property
    def doomed(self) -> list[Doc]:
        """Members under a reclaim notice that the group replaces at once (SpotInstanceRemedy)."""
        if not self.group.get("SpotInstanceRemedy"):
            return []
        return [m for m in self.all if under_notice(m, self.now)]

    @property
    def serving(self) -> list[Doc]:
        leaving = self.replaced | {m["InstanceId"] for m in self.doomed} | {
            i for i, state in self.waiting.items() if state == "Removing:Wait"}
        return [m for m in self.all if m["InstanceId"] not in leaving and m["Status"] in HOLDING]

    @property
    def removable(self) -> list[Doc]:
        """Serving members that a scale-in may take (not those waiting at a hook)."""
        return [m for m in self.serving if m["InstanceId"] not in self.waiting]

    def zone_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.serving:
            counts[m["ZoneId"]] = counts.get(m["ZoneId"], 0) + 1
        return counts


@ticker
def scaling_engine(cloud: Cloud) -> None:
    """Reconcile every enabled scaling group, each in one store transaction."""
    for group_id in [g["ScalingGroupId"] for g in scaling_groups.SCALING_GROUP.all(cloud.store)]:
        try:
            with cloud.store.transaction():
                group = scaling_groups.SCALING_GROUP.find(cloud.store, group_id)
                if group is not None and group["LifecycleState"] == "Active":
                    reconcile(cloud, group)
        except Exception:
            log.exception("scaling group %s: reconcile failed; retrying on the next tick", group_id)


def reconcile(cloud: Cloud, group: Doc) -> None:
    config = scaling_groups.SCALING_CONFIGURATION.find(cloud.store, group.get("ActiveScalingConfigurationId") or "")
    if config is None:
        return
    before = copy.deepcopy(group)
    gid = group["ScalingGroupId"]
    _settle_lifecycle(cloud, group)
    _finish_replacements(cloud, group)
    _advance_activities(cloud, group)
    view = View(group, cloud.clock.now(), members(cloud, gid), lifecycle_hooks.waiting_instances(cloud.store, gid))
    departures = [i for i in group.get("KnownMembers", []) if i not in {m["InstanceId"] for m in view.all}]
    desired = int(group["DesiredCapacity"])
    need = desired - len(view.serving)
    if desired == 0 and view.all:
        # Nothing is kept, not even members on their way out (reclaimed or being replaced); members
        # waiting at a lifecycle hook finish their wait first.
        if candidates := [m for m in view.all if m["InstanceId"] not in view.waiting]:
            _scale_in(cloud, group, view, candidates)
    elif need > 0:
        _scale_out(cloud, group, config, view, need, departures)
    elif need < 0:
        if chosen := removal_order(group, view.removable)[:-need]:
            _scale_in(cloud, group, view, chosen)
    else:
        group["PendingCause"] = None
        if group.get("SpotAutoReplaceOnDemand") and config["SpotStrategy"] != "NoSpot":
            _replace_on_demand(cloud, group, config, view)
    final = members(cloud, group["ScalingGroupId"])
    group["KnownMembers"] = [m["InstanceId"] for m in final]
    group["Remedied"] = [i for i in group.get("Remedied", []) if i in group["KnownMembers"]]
    if group != before:
        scaling_groups.SCALING_GROUP.save(cloud.store, group)


def _finish_replacements(cloud: Cloud, group: Doc) -> None:
    """Remove a pay-as-you-go member once the spot instance replacing it is in service.

    The removal is a scale-in: the group's SCALE_IN hooks hold the pay-as-you-go member first.
    """
    gid = group["ScalingGroupId"]
    waiting = lifecycle_hooks.waiting_instances(cloud.store, gid)
    for spot_id, payg_id in dict(group.get("Replacements", {})).items():
        if payg_id in waiting:
            continue
        spot = instances.INSTANCE.find(cloud.store, spot_id)
        payg = instances.INSTANCE.find(cloud.store, payg_id)
        if spot is None or payg is None:
            del group["Replacements"][spot_id]
            _settle_removal(cloud, group, payg_id, released=False)
            continue
        if spot["Status"] == "Running" and spot_id not in waiting:
            activity = next((a for a in scaling_groups.activities_of(cloud.store, gid)
                             if payg_id in a.get("AwaitingRemoval", [])), None)
            if activity is not None and _hold(cloud, group, activity, lifecycle_hooks.SCALE_IN, [payg_id]):
                continue
            instances.release(cloud, payg_id, reason=f"replaced by spot instance {spot_id} (scaling group {gid})")
            del group["Replacements"][spot_id]
            _settle_removal(cloud, group, payg_id, released=True)


def _settle_removal(cloud: Cloud, group: Doc, instance_id: str, released: bool,
                    why: str = "its spot replacement did not come into service") -> None:
    gid = group["ScalingGroupId"]
    for activity in [a for a in scaling_groups.activities_of(cloud.store, gid)
                     if instance_id in a.get("AwaitingRemoval", [])]:
        activity["AwaitingRemoval"].remove(instance_id)
        if released:
            activity["DestroyedInstances"].append(instance_id)
        else:
            activity["Warnings"].append(f"The pay-as-you-go instance {instance_id} was kept: {why}.")
        scaling_groups.SCALING_ACTIVITY.save(cloud.store, activity)


def _drop_released_pairs(cloud: Cloud, group: Doc) -> None:
    """Forget the replacements whose pay-as-you-go member a scale-in has released."""
    for spot_id, payg_id in list(group.get("Replacements", {}).items()):
        if instances.INSTANCE.find(cloud.store, payg_id) is None:
            del group["Replacements"][spot_id]
            _settle_removal(cloud, group, payg_id, released=True)


def _departure_cause(cloud: Cloud, instance_id: str) -> str:
    record = instances.RELEASED_INSTANCE.find(cloud.store, instance_id) or {}
    reason = record.get("Reason", "released")
    if "reclaim" in reason:
        return f"The spot instance {instance_id} was reclaimed and left the scaling group."
    return f"The instance {instance_id} left the scaling group ({reason})."


def _scale_out_cause(cloud: Cloud, group: Doc, view: View, departures: list[str]) -> str:
    parts: list[str] = []
    if group.get("PendingCause"):
        parts.append(group["PendingCause"])
    remedied = set(group.get("Remedied", []))
    for member in view.doomed:
        if member["InstanceId"] not in remedied:
            parts.append(f"The spot instance {member['InstanceId']} is about to be reclaimed; "
                         "launching a replacement (SpotInstanceRemedy).")
    parts.extend(_departure_cause(cloud, i) for i in departures)
    if not parts:
        parts.append(f"The group has {len(view.serving)} instances in service, fewer than its Desired Capacity "
                     f"{group['DesiredCapacity']}.")
    return " ".join(parts)


def _scale_out(cloud: Cloud, group: Doc, config: Doc, view: View, need: int, departures: list[str]) -> None:
    cause = _scale_out_cause(cloud, group, view, departures)
    od_target = on_demand_target(group, int(group["DesiredCapacity"]), config)
    od_now = sum(1 for m in view.serving if not instances.is_spot(m))
    zone_counts = view.zone_counts()
    compensate = group["MultiAZPolicy"] == COST_OPTIMIZED and group.get("CompensateWithOnDemand", True)
    launched: list[Doc] = []
    warnings: list[str] = []
    failure = ""
    for _ in range(need):
        want_spot = od_now >= od_target
        placement = choose(cloud, group, config, want_spot, zone_counts)
        if placement is None and compensate:
            placement = choose(cloud, group, config, False, zone_counts)
            warnings.append("No spot stock in any zone of the group's vSwitches "
                            f"({', '.join(v['ZoneId'] for v in group_vswitches(cloud, group))}); launched a "
                            "pay-as-you-go instance instead (CompensateWithOnDemand).")
        if placement is None:
            failure = ("The scale-out failed: no spot stock for " + ", ".join(instance_types(config))
                       + " in any zone of the group's vSwitches; retrying.") if want_spot else \
                "The scale-out failed: the group has no usable vSwitch."
            break
        launched.append(instances.launch(cloud, launch_spec(cloud, group, config, placement)))
        zone_counts[placement.vswitch["ZoneId"]] = zone_counts.get(placement.vswitch["ZoneId"], 0) + 1
        od_now += 0 if placement.spot else 1
    _record_scale_out(cloud, group, view, cause, launched, warnings, failure)


def _record_scale_out(cloud: Cloud, group: Doc, view: View, cause: str, launched: list[Doc],
                      warnings: list[str], failure: str) -> None:
    if not launched:
        # Failed attempts repeat every tick until stock returns: record each distinct failure once.
        if group.get("LastFailure") != failure:
            new_activity(cloud, group, cause, "Add ECS instances", status="Failed", message=failure)
            group["LastFailure"] = failure
        return
    description = f"Add \"{len(launched)}\" ECS instance(s)"
    activity = new_activity(cloud, group, cause, description)
    activity["CreatedInstances"] = [i["InstanceId"] for i in launched]
    activity["Warnings"] = warnings + ([failure] if failure else [])
    scaling_groups.SCALING_ACTIVITY.save(cloud.store, activity)
    _hold(cloud, group, activity, lifecycle_hooks.SCALE_OUT, activity["CreatedInstances"])
    group["PendingCause"] = None
    group["LastFailure"] = failure or None
    group["Remedied"] = sorted(set(group.get("Remedied", [])) | {m["InstanceId"] for m in view.doomed})


def removal_order(group: Doc, candidates: list[Doc]) -> list[Doc]:
    """Members in the order a scale-in removes them: pay-as-you-go first, then by RemovalPolicies."""
    policies = group.get("RemovalPolicies") or ["OldestScalingConfiguration", "OldestInstance"]
    newest_first = next((p == "NewestInstance" for p in policies if p in ("OldestInstance", "NewestInstance")), False)
    by_age = sorted(candidates, key=lambda m: m["CreatedAt"], reverse=newest_first)
    return sorted(by_age, key=lambda m: instances.is_spot(m))


def _scale_in(cloud: Cloud, group: Doc, view: View, chosen: list[Doc]) -> None:
    cause = group.get("PendingCause") or (f"The group has {len(view.serving)} instances in service, more than "
                                          f"its Desired Capacity {group['DesiredCapacity']}.")
    activity = new_activity(cloud, group, cause, f"Remove \"{len(chosen)}\" ECS instance(s)")
    serving = {m["InstanceId"] for m in view.serving}
    remove(cloud, group, activity, [m["InstanceId"] for m in chosen],
           lowered=sum(1 for m in chosen if m["InstanceId"] in serving))
    _drop_released_pairs(cloud, group)
    group["PendingCause"] = None


def remove(cloud: Cloud, group: Doc, activity: Doc, instance_ids: list[str], hooks: bool = True,
           ignored: tuple[str, ...] = (), lowered: int = 0) -> bool:
    """Remove members in a scale-in `activity`: held by the group's SCALE_IN hooks (True), or released.

    `lowered`: by how much the scale-in lowered the desired capacity (a ROLLBACK gives it back).
    """
    if hooks and _hold(cloud, group, activity, lifecycle_hooks.SCALE_IN, instance_ids, ignored):
        activity.update(Removal=True, Lowered=lowered)
        scaling_groups.SCALING_ACTIVITY.save(cloud.store, activity)
        return True
    for instance_id in instance_ids:
        instances.release(cloud, instance_id, reason=f"removed from scaling group {group['ScalingGroupId']}")
    activity["DestroyedInstances"] = list(instance_ids)
    finish_activity(cloud, activity, "Successful", f"\"{len(instance_ids)}\" ECS instances are removed.")
    return False


def _replace_on_demand(cloud: Cloud, group: Doc, config: Doc, view: View) -> None:
    """Launch a spot instance for each surplus pay-as-you-go member while spot stock allows."""
    od_target = on_demand_target(group, int(group["DesiredCapacity"]), config)
    payg = removal_order(group, [m for m in view.removable if not instances.is_spot(m) and m["Status"] == "Running"])
    surplus = len(payg) - od_target
    zone_counts = view.zone_counts()
    for member in payg[:max(0, surplus)]:
        placement = choose(cloud, group, config, True, zone_counts)
        if placement is None:
            return
        spot = instances.launch(cloud, launch_spec(cloud, group, config, placement))
        group.setdefault("Replacements", {})[spot["InstanceId"]] = member["InstanceId"]
        cause = (f"Spot stock is available again in {placement.vswitch['ZoneId']}: the spot instance "
                 f"{spot['InstanceId']} replaces the pay-as-you-go instance {member['InstanceId']} "
                 "(SpotAutoReplaceOnDemand).")
        activity = new_activity(cloud, group, cause, "Replace a pay-as-you-go ECS instance with a spot instance")
        activity["CreatedInstances"] = [spot["InstanceId"]]
        activity["AwaitingRemoval"] = [member["InstanceId"]]
        scaling_groups.SCALING_ACTIVITY.save(cloud.store, activity)
        _hold(cloud, group, activity, lifecycle_hooks.SCALE_OUT, [spot["InstanceId"]])


# -- lifecycle hooks ---------------------------------------------------------------------------

def _hold(cloud: Cloud, group: Doc, activity: Doc, transition: str, instance_ids: list[str],
          ignored: tuple[str, ...] = ()) -> bool:
    """Hold `instance_ids` of `activity` at the group's `transition` hooks; False when it has none."""
    hooks = lifecycle_hooks.active_hooks(cloud.store, group["ScalingGroupId"], transition, ignored)
    if not hooks or not instance_ids:
        return False
    actions = lifecycle_hooks.hold(cloud.store, hooks, activity, transition, instance_ids, cloud.clock.now())
    log.info("%s %s: %s wait (%s) for %s", group["ScalingGroupId"], activity["ScalingActivityId"],
             lifecycle_hooks.WAIT_STATES[transition], ", ".join(a["LifecycleActionToken"] for a in actions),
             ", ".join(instance_ids))
    return True


def _settle_lifecycle(cloud: Cloud, group: Doc) -> None:
    """Time out lifecycle actions, and apply the result of every wait whose actions have all ended."""
    now = cloud.clock.now()
    waits: dict[tuple[str, str], list[Doc]] = {}
    for action in lifecycle_hooks.open_actions(cloud.store, group["ScalingGroupId"]):
        waits.setdefault((action["ScalingActivityId"], action["LifecycleTransition"]), []).append(action)
    for (activity_id, transition), actions in waits.items():
        held = list(dict.fromkeys(i for a in actions for i in a["InstanceIds"]))
        present = [r for r in (instances.INSTANCE.find(cloud.store, i) for i in held) if r is not None]
        _time_out(actions, transition, present, now)
        if all(a["LifecycleActionStatus"] != lifecycle_hooks.PENDING for a in actions):
            result = lifecycle_hooks.outcome(transition, actions)
            activity = scaling_groups.SCALING_ACTIVITY.find(cloud.store, activity_id)
            if activity is not None:
                end = _end_removal if transition == lifecycle_hooks.SCALE_IN else _end_launch
                end(cloud, group, activity, held, [r["InstanceId"] for r in present], result)
            for action in actions:
                action["Applied"] = True
        for action in actions:
            lifecycle_hooks.LIFECYCLE_ACTION.save(cloud.store, action)


def _time_out(actions: list[Doc], transition: str, present: list[Doc], now: float) -> None:
    """Start the timers of scale-out waits whose instances run, and end the waits that are over.

    A wait ends when its timeout passes, when its instances are gone, and on a scale-in when another
    hook's action on the same instances ended with ABANDON or ROLLBACK (DefaultResult applies).
    """
    pending = [a for a in actions if a["LifecycleActionStatus"] == lifecycle_hooks.PENDING]
    for action in pending:
        if action["StartedAt"] is None and all(r["Status"] == "Running" for r in present):
            lifecycle_hooks.start(action, now)
        if not present:
            lifecycle_hooks.end(action, lifecycle_hooks.TIMEOUT, action["DefaultResult"], now)
        elif action["Deadline"] is not None and now >= action["Deadline"]:
            lifecycle_hooks.end(action, lifecycle_hooks.TIMEOUT, action["DefaultResult"], action["Deadline"])
    stopped = transition == lifecycle_hooks.SCALE_IN and any(
        a["LifecycleActionResult"] in (lifecycle_hooks.ABANDON, lifecycle_hooks.ROLLBACK)
        for a in actions if a["LifecycleActionStatus"] != lifecycle_hooks.PENDING)
    for action in pending if stopped else []:
        if action["LifecycleActionStatus"] == lifecycle_hooks.PENDING:
            lifecycle_hooks.end(action, lifecycle_hooks.TIMEOUT, action["DefaultResult"], now)


def _end_launch(cloud: Cloud, group: Doc, activity: Doc, held: list[str], present: list[str], result: str) -> None:
    """After a scale-out wait: CONTINUE puts the new instances in service, ABANDON/ROLLBACK releases them."""
    if result == lifecycle_hooks.CONTINUE or not present:
        return
    for instance_id in present:
        instances.release(cloud, instance_id, reason=f"abandoned at a lifecycle hook of scaling group "
                          f"{group['ScalingGroupId']}")
    activity.setdefault("Abandoned", []).extend(present)
    activity["Warnings"].append(f"A lifecycle action ended with {result}: the new instances "
                                f"{', '.join(present)} were released.")
    scaling_groups.SCALING_ACTIVITY.save(cloud.store, activity)


def _end_removal(cloud: Cloud, group: Doc, activity: Doc, held: list[str], present: list[str], result: str) -> None:
    """After a scale-in wait: CONTINUE and ABANDON both remove the instances, ROLLBACK keeps them."""
    gid = group["ScalingGroupId"]
    if result == lifecycle_hooks.ROLLBACK:
        _roll_back(cloud, group, activity, held, present)
        return
    for instance_id in present:
        instances.release(cloud, instance_id, reason=f"removed from scaling group {gid}")
    group["KnownMembers"] = [i for i in group.get("KnownMembers", []) if i not in held]
    if not activity.get("Removal"):
        _drop_released_pairs(cloud, group)
        return
    activity["DestroyedInstances"] = held
    note = "" if result == lifecycle_hooks.CONTINUE else f" (a lifecycle action ended with {result})"
    finish_activity(cloud, activity, "Successful", f"\"{len(held)}\" ECS instances are removed{note}.")


def _roll_back(cloud: Cloud, group: Doc, activity: Doc, held: list[str], present: list[str]) -> None:
    """ROLLBACK of a scale-in: the instances stay in service.

    The desired capacity the scale-in lowered is given back, or the group would scale in again at once.
    """
    message = f"A lifecycle action ended with ROLLBACK: the instances {', '.join(held)} stay in the scaling group."
    if not activity.get("Removal"):
        for spot_id, payg_id in list(group.get("Replacements", {}).items()):
            if payg_id in held:
                del group["Replacements"][spot_id]
                _settle_removal(cloud, group, payg_id, released=False, why="a lifecycle action ended with ROLLBACK")
        return
    restored = min(int(activity.get("Lowered", 0)), len(present))
    if restored:
        before = int(group["DesiredCapacity"])
        group["DesiredCapacity"] = min(int(group["MaxSize"]), before + restored)
        message += f" The Desired Capacity goes back from {before} to {group['DesiredCapacity']}."
    finish_activity(cloud, activity, "Rejected", message)


def release_all(cloud: Cloud, group_id: str, reason: str) -> list[str]:
    """Release every member of a group (ForceDelete)."""
    released = []
    for member in members(cloud, group_id):
        instances.release(cloud, member["InstanceId"], reason=reason)
        released.append(member["InstanceId"])
    return released
