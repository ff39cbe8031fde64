"""The lifecycle of ECS instances, shared by the ECS API and the Auto Scaling engine.

This module owns the `instance` and `released_instance` records: every other module reads and
writes them through it. The backend makes the machines. `sync` moves each record to the status
its machine reports and carries out due spot reclaims.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import billing, ids
from .clock import Clock, iso_minutes, iso_seconds
from .errors import ApiError
from .store import Kind, Store

if TYPE_CHECKING:
    from .cloud import Cloud

log = logging.getLogger("localcloud.instances")

Instance = dict[str, Any]

INSTANCE = Kind("instance", "InstanceId")
RELEASED_INSTANCE = Kind("released_instance", "InstanceId")
# Statuses of an instance that holds its capacity (a Stopped one still does).
LIVE_STATUSES = ("Pending", "Starting", "Running", "Stopping", "Stopped")
KILL_WAIT = 30.0  # real seconds an endpoint holds the request of an instance it killed, until it is dead


def is_spot(instance: Instance) -> bool:
    """True for a spot instance."""
    return instance.get("SpotStrategy", "NoSpot") != "NoSpot"


def get(cloud: Cloud, instance_id: str) -> Instance:
    """The instance record; InvalidInstanceId.NotFound when there is none."""
    instance = INSTANCE.find(cloud.store, instance_id)
    if instance is None:
        raise ApiError("InvalidInstanceId.NotFound", f"The specified instance {instance_id} does not exist.", 404)
    return instance


def launch(cloud: Cloud, spec: dict[str, Any]) -> Instance:
    """Create an instance record from `spec` (ECS field names) and start making its machine.

    The caller has validated the spec and, for spot, checked the market. Returns the record.
    """
    now = cloud.clock.now()
    zone, itype = spec["ZoneId"], spec["InstanceType"]
    offer = cloud.market.offer(zone, itype)
    spot = spec.get("SpotStrategy", "NoSpot") != "NoSpot"
    instance_id = ids.new_id("i", cloud.settings.region)
    instance: Instance = {
        "InstanceId": instance_id,
        "InstanceName": spec.get("InstanceName") or instance_id,
        "HostName": spec.get("HostName") or instance_id,
        "Description": spec.get("Description", ""),
        "RegionId": cloud.settings.region,
        "ZoneId": zone,
        "InstanceType": itype,
        "ImageId": spec["ImageId"],
        "VpcId": spec.get("VpcId", ""),
        "VSwitchId": spec.get("VSwitchId", ""),
        "SecurityGroupIds": list(spec.get("SecurityGroupIds", [])),
        "PrivateIpAddress": spec.get("PrivateIpAddress", ""),
        "PublicIpAddress": spec.get("PublicIpAddress", ""),
        "InternetMaxBandwidthOut": int(spec.get("InternetMaxBandwidthOut", 0)),
        "InstanceChargeType": "PostPaid",
        "SpotStrategy": spec.get("SpotStrategy", "NoSpot"),
        "SpotPriceLimit": float(spec.get("SpotPriceLimit", 0.0)),
        "SpotDuration": int(spec.get("SpotDuration", 0)),
        "SpotInterruptionBehavior": spec.get("SpotInterruptionBehavior", "Terminate"),
        "RamRoleName": spec.get("RamRoleName", ""),
        "UserData": spec.get("UserData", ""),
        "KeyPairName": spec.get("KeyPairName", ""),
        "SystemDisk": spec.get("SystemDisk", {"Category": "cloud_essd", "Size": 40}),
        "Tags": list(spec.get("Tags", [])),
        "ScalingGroupId": spec.get("ScalingGroupId", ""),
        "Status": "Pending",
        "OperationLocks": [],
        "CreatedAt": now,
        "CreationTime": iso_minutes(now),
        "ReclaimAt": None,
        "PricePerHour": offer.spot_price if spot else offer.on_demand_price,
    }
    with cloud.store.transaction():
        INSTANCE.save(cloud.store, instance)
        billing.open_entry(cloud.store, instance, billing.SPOT if spot else billing.PAY_AS_YOU_GO,
                           instance["PricePerHour"], now)
    cloud.backend.create(instance)
    log.info("launched %s (%s, %s, %s)", instance_id, zone, itype, instance["SpotStrategy"])
    return instance


def release(cloud: Cloud, instance_id: str, reason: str = "released") -> None:
    """Delete an instance at once, whatever its state (no checks: callers do them)."""
    instance = INSTANCE.find(cloud.store, instance_id)
    if instance is None:
        return
    cloud.backend.destroy(instance)
    with cloud.store.transaction():
        INSTANCE.delete(cloud.store, instance_id)
        billing.close_entry(cloud.store, instance_id, cloud.clock.now())
        RELEASED_INSTANCE.save(cloud.store, {
            "InstanceId": instance_id, "Reason": reason, "ReleasedAt": cloud.clock.now(),
            "ScalingGroupId": instance.get("ScalingGroupId", ""), "ZoneId": instance["ZoneId"],
            "SpotStrategy": instance["SpotStrategy"], "PrivateIpAddress": instance.get("PrivateIpAddress", ""),
        })
    log.info("released %s (%s)", instance_id, reason)


def kill(cloud: Cloud, instance_id: str, reason: str) -> None:
    """The machine dies at once, without a clean shutdown (a host failure, a reclaim without notice): it is
    killed, then released as a reclaimed instance is."""
    instance = INSTANCE.find(cloud.store, instance_id)
    if instance is None:
        return
    cloud.backend.kill(instance)
    release(cloud, instance_id, reason=reason)


def kill_in_request(cloud: Cloud, instance: Instance, request: str, wait: float = KILL_WAIT) -> None:
    """An injected fault kills `instance` in the middle of a request it sent: the endpoint calls this and then
    drops the request. It returns once the machine is dead (or after `wait` real seconds): a client that
    tried again would otherwise finish, in the instant between the kill and the death, what the kill
    interrupted."""
    kill(cloud, instance["InstanceId"], reason=f"killed by an injected fault during {request}")
    deadline = time.monotonic() + wait
    while cloud.backend.observe(instance) != "Stopped" and time.monotonic() < deadline:
        time.sleep(0.1)


# -- queries of other modules -------------------------------------------------------------------

def members_of(store: Store, group_id: str) -> list[Instance]:
    """The instances of a scaling group."""
    return INSTANCE.all(store, lambda i: i.get("ScalingGroupId") == group_id)


def in_vswitch(store: Store, vswitch_id: str, but_not: str = "") -> list[Instance]:
    """The instances of a vSwitch (less the instance `but_not`)."""
    return INSTANCE.all(store, lambda i: i.get("VSwitchId") == vswitch_id and i["InstanceId"] != but_not)


def in_security_group(store: Store, group_id: str) -> list[Instance]:
    """The instances that a security group holds."""
    return INSTANCE.all(store, lambda i: group_id in i.get("SecurityGroupIds", []))


def using_image(store: Store, image_id: str) -> list[Instance]:
    """The instances launched from an image."""
    return INSTANCE.all(store, lambda i: i["ImageId"] == image_id)


def choose_addresses(store: Store, free: Iterable[str], count: int) -> list[str]:
    """`count` of the `free` private addresses (in their order), those no instance has had first, then those
    released longest ago. A released instance's machine takes a while to go (a container is removed after its
    record), and what it still sends must not pass for a new instance's: an address is handed out again only
    when the subnet has no fresh one left, as a DHCP server does."""
    released = {r["PrivateIpAddress"]: r["ReleasedAt"] for r in RELEASED_INSTANCE.all(store)
                if r.get("PrivateIpAddress")}
    fresh, reused = [], []
    for address in free:
        if address not in released:
            fresh.append(address)
            if len(fresh) == count:
                return fresh
        else:
            reused.append(address)
    return fresh + sorted(reused, key=released.__getitem__)[:count - len(fresh)]


def at_address(store: Store, private_ip: str) -> Instance | None:
    """The instance with this private address, or None."""
    found = INSTANCE.all(store, lambda i: i.get("PrivateIpAddress") == private_ip)
    return found[0] if found else None


def live_spot(store: Store, zone: str, instance_type: str) -> list[Instance]:
    """The spot instances of a zone and type that hold market capacity."""
    return INSTANCE.all(store, lambda i: i["ZoneId"] == zone and i["InstanceType"] == instance_type
                        and is_spot(i) and i["Status"] in LIVE_STATUSES)


# -- spot reclaims -------------------------------------------------------------------------------

def protected_until(instance: Instance) -> float:
    """End of the SpotDuration protection period (virtual time)."""
    return instance["CreatedAt"] + 3600 * int(instance.get("SpotDuration") or 0)


def schedule_reclaim(cloud: Cloud, instance_id: str, notice_seconds: float | None = None) -> Instance:
    """Announce a spot reclaim: a Recycling lock now, the kill after the notice.

    Within the SpotDuration protection period the kill waits until the period is over.
    """
    notice = cloud.settings.reclaim_notice_seconds if notice_seconds is None else notice_seconds
    if notice < 0:
        raise ValueError("the notice must be zero or more seconds")
    with cloud.store.transaction():
        instance = get(cloud, instance_id)
        if not is_spot(instance):
            raise ApiError("IncorrectInstanceStatus", f"{instance_id} is a pay-as-you-go instance; only spot "
                           "instances are reclaimed.")
        if instance["ReclaimAt"] is not None:
            return instance
        now = cloud.clock.now()
        instance["ReclaimAt"] = max(now + notice, protected_until(instance))
        instance["ReclaimNoticeAt"] = instance["ReclaimAt"] - notice
        if instance["ReclaimNoticeAt"] <= now:
            instance["OperationLocks"] = [{"LockReason": "Recycling"}]
        INSTANCE.save(cloud.store, instance)
    log.info("reclaim of %s at %s (virtual clock)", instance_id, iso_seconds(instance["ReclaimAt"]))
    return instance


def termination_time(instance: Instance, clock: Clock) -> str | None:
    """What the metadata service answers for spot/termination-time: None until the notice, then when the
    instance is reclaimed on the instance's own clock (what `date` says there), in ECS's format
    (2026-12-01T15:00:00Z). The reclaim is due on the virtual clock; an agent that trusts the answer must
    be right at any time scale, so it gets the real moment, rounded down to the second."""
    if instance.get("ReclaimAt") is None or clock.now() < instance.get("ReclaimNoticeAt", instance["ReclaimAt"]):
        return None
    return iso_seconds(clock.real_time(instance["ReclaimAt"]))


def sync(cloud: Cloud) -> None:
    """Bring every record up to date with its machine; carry out due reclaims."""
    now = cloud.clock.now()
    for instance in INSTANCE.all(cloud.store):
        instance_id = instance["InstanceId"]
        if instance.get("ReclaimAt") is not None:
            if now >= instance["ReclaimAt"]:
                _carry_out_reclaim(cloud, instance)
                continue
            if not instance["OperationLocks"] and now >= instance["ReclaimNoticeAt"]:
                INSTANCE.update(cloud.store, instance_id, OperationLocks=[{"LockReason": "Recycling"}])
        observed = cloud.backend.observe(instance)
        if observed != instance["Status"]:
            with cloud.store.transaction():
                current = INSTANCE.find(cloud.store, instance_id)
                if current is not None and current["Status"] == instance["Status"]:
                    current["Status"] = observed
                    if observed == "Running" and not current.get("StartedAt"):
                        current["StartedAt"] = now
                        billing.mark_running(cloud.store, instance_id, now)
                    INSTANCE.save(cloud.store, current)


def _carry_out_reclaim(cloud: Cloud, instance: Instance) -> None:
    cloud.backend.kill(instance)
    if instance.get("SpotInterruptionBehavior") == "Stop":
        INSTANCE.update(cloud.store, instance["InstanceId"], Status="Stopped", ReclaimAt=None,
                           OperationLocks=[])
        billing.close_entry(cloud.store, instance["InstanceId"], cloud.clock.now())
    else:
        release(cloud, instance["InstanceId"], reason="spot instance reclaimed")
