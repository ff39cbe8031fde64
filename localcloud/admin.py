"""Operator actions behind the CLI: the spot market, reclaims, the bill, status."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from . import billing, custom_events, instances, scaling_groups
from .clock import iso_seconds
from .errors import ApiError

if TYPE_CHECKING:
    from .cloud import Cloud


def pid() -> int:
    return os.getpid()


def _market(cloud: Cloud) -> list[dict[str, Any]]:
    rows = []
    for zone in cloud.market.zones:
        for itype in cloud.market.instance_types:
            offer = cloud.market.offer(zone, itype)
            rows.append({"zone": zone, "instance_type": itype, "capacity": offer.capacity,
                         "in_use": cloud.market.spot_in_use(zone, itype), "spot_price": offer.spot_price,
                         "on_demand_price": offer.on_demand_price})
    return rows


def handle(cloud: Cloud, route: str, args: dict[str, Any]) -> dict[str, Any]:
    if route == "status":
        live = instances.INSTANCE.all(cloud.store)
        return {
            "pid": pid(), "region": cloud.settings.region, "zones": cloud.settings.zones,
            "time_scale": cloud.clock.scale, "virtual_now": iso_seconds(cloud.clock.now()),
            "instances": [{k: i[k] for k in ("InstanceId", "ZoneId", "InstanceType", "Status", "SpotStrategy",
                                              "ScalingGroupId")} for i in live],
            "scaling_groups": len(scaling_groups.SCALING_GROUP.all(cloud.store)),
            "market": _market(cloud),
        }
    if route == "spot":
        cloud.market.check(args.get("zone"), args.get("instance_type"))
        zones = [args["zone"]] if args.get("zone") else cloud.market.zones
        for zone in zones:
            cloud.market.set(zone, args["instance_type"], args.get("capacity"), args.get("price"))
        return {"market": [r for r in _market(cloud) if r["instance_type"] == args["instance_type"]]}
    if route == "reclaim":
        instance = instances.schedule_reclaim(cloud, args["instance_id"], args.get("notice"))
        return {"instance_id": instance["InstanceId"], "clock": "virtual",
                "notice_at": iso_seconds(instance["ReclaimNoticeAt"]),
                "terminate_at": iso_seconds(instance["ReclaimAt"]),
                # What the instance's metadata service answers, on the instance's own (real) clock.
                "termination_time": instances.termination_time(instance, cloud.clock)}
    if route == "bill":
        return billing.report(cloud.store, cloud.clock.now(), cloud.clock.state())
    if route == "events":
        return {"clock": "virtual", "events": [
            {**event, "Received": iso_seconds(event["ReceivedVirtual"])}
            for event in custom_events.all_events(cloud.store)]}
    if route == "fault":
        address = None
        if args.get("instance"):
            address = instances.get(cloud, args["instance"]).get("PrivateIpAddress")
            if not address:
                raise ValueError(f"{args['instance']} has no network address yet: cut it off once it runs")
        return {"fault": cloud.faults.add(args["target"], float(args.get("rate") or 0), args.get("code"),
                                          float(args.get("latency") or 0), args.get("match") or "*",
                                          args.get("duration"), args.get("seed"), bool(args.get("kill")),
                                          args.get("methods"), args.get("limit"), args.get("instance"),
                                          address, bool(args.get("new")))}
    if route == "fault-list":
        return {"faults": cloud.faults.list()}
    if route == "fault-clear":
        return {"cleared": cloud.faults.clear(args.get("id"))}
    if route == "time-scale":
        cloud.clock.rescale(float(args["scale"]))
        cloud.settings.time_scale = cloud.clock.scale
        cloud.store.kv_put("clock", cloud.clock.state())
        return {"time_scale": cloud.clock.scale}
    if route == "oss-legacy-bucket":
        # A bucket created before OSS retired V1 signatures (2025-09-01), which takes them still: for a
        # test of what a user with such a bucket meets. Every bucket localcloud creates is a new one.
        if cloud.oss is None:
            raise ApiError("InvalidAction.NotFound", "this localcloud has no OSS endpoint", 404)
        bucket = cloud.oss.make_legacy(args["bucket"])
        return {"bucket": bucket.name, "created": iso_seconds(bucket.created)}
    raise ApiError("InvalidAction.NotFound", f"unknown admin route {route!r}", 404)
