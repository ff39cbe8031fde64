"""The data of the training timeline (spotfirst.finetune.training_timeline draws it), the
interruptions the scaling activities tell of, and durations as the reports write them.

Every time in the data is on one clock: on localcloud its virtual clock (the ledger's; the trainers'
wall-clock step times are placed on it with the clock's anchor and scale), on a real account the
wall clock. `timeline_data` gives one bar per training instance (zone, charge type, start and end),
the training step over time, one mark per interruption, and the cumulative cost against the same
instance time at the pay-as-you-go price. The status and chaos reports (plugins/filter/status.py,
chaos.py) lay their timelines out with it.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from ansible_collections.spotfirst.finetune.plugins.module_utils.training_state import agent_events


def log_entries(log: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """An instance's event log as its entries: from its text, or as they are (alicloud_training_info's
    event_logs are parsed already)."""
    return agent_events(log) if isinstance(log, str) else list(log or [])


def epoch(value: Any) -> float:
    """Unix seconds from a number or an ISO 8601 time (ECS and ESS give minutes: 2024-05-01T08:00Z)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def to_clock(anchor: dict[str, Any] | None) -> Any:
    """Wall-clock seconds to the timeline's clock: localcloud's virtual clock with its anchor, else as is."""
    if not anchor:
        return lambda t: float(t)
    scale, real, virtual = float(anchor["scale"]), float(anchor["real"]), float(anchor["virtual"])
    return lambda t: virtual + (float(t) - real) * scale


def cumulative_cost(bars: list[dict[str, Any]], pay_as_you_go_price: float) -> list[dict[str, float]]:
    """The cost paid by each bar edge, and what the same instance time would have cost pay-as-you-go
    (exact: both grow linearly between edges)."""
    edges = sorted({b["start"] for b in bars} | {b["end"] for b in bars})
    points = []
    for t in edges:
        hours = [(max(0.0, min(t, b["end"]) - b["start"]) / 3600, b["price"]) for b in bars]
        points.append({"time": t, "cost": round(sum(h * p for h, p in hours), 6),
                       "all_pay_as_you_go": round(sum(h for h, _ in hours) * float(pay_as_you_go_price), 6)})
    return points


def timeline_data(instances: list[dict[str, Any]], event_logs: dict[str, str | list[dict[str, Any]]],
                  interruptions: list[dict[str, Any]], pay_as_you_go_price: float,
                  clock: dict[str, Any] | None = None, now: Any = None) -> dict[str, Any]:
    """The timeline of a training.

    `instances`: {instance_id, zone, charge, start, end (None: still running), price}, times on the
    timeline's clock (localcloud's ledger entries as `ledger_instances` gives them); `event_logs`: each
    instance's event log (text or parsed), wall-clock times; `interruptions`: {cause, and time (on the
    timeline's clock: a scaling activity's) or wall_time (the wall clock: when chaos.yml acted)};
    `clock`: localcloud's {scale, real, virtual} anchor (None on a real account); `now`: the end of the
    bars still running, on the timeline's clock.
    """
    place = to_clock(clock)
    end_now = epoch(now) if now is not None else None
    bars = []
    for item in sorted(instances, key=lambda i: epoch(i["start"])):
        start = epoch(item["start"])
        end = epoch(item["end"]) if item.get("end") is not None else (end_now if end_now is not None else start)
        bars.append({"instance_id": item["instance_id"], "zone": item.get("zone"), "charge": item["charge"],
                     "start": start, "end": max(start, end), "price": float(item.get("price") or 0.0),
                     "running": item.get("end") is None})
    steps = sorted((place(e["time"]), int(e["step"]), name) for name, log in event_logs.items()
                   for e in log_entries(log) if e.get("event") == "step")
    marks = [{"time": place(epoch(i["wall_time"])) if i.get("wall_time") is not None else epoch(i["time"]),
              "cause": i["cause"]} for i in interruptions]
    return {
        "clock": "virtual" if clock else "wall",
        "time_scale": float(clock["scale"]) if clock else 1.0,
        "origin": bars[0]["start"] if bars else (steps[0][0] if steps else 0.0),
        "bars": bars,
        "steps": [{"time": t, "step": s, "instance_id": name} for t, s, name in steps],
        "interruptions": marks,
        "cost": cumulative_cost(bars, pay_as_you_go_price),
    }


def ledger_instances(bill: dict[str, Any], scaling_group_id: str = "") -> list[dict[str, Any]]:
    """The training instances of localcloud's bill (the entries of the scaling group, or of any group)."""
    return [{"instance_id": e["InstanceId"], "zone": e["ZoneId"], "charge": e["ChargeType"], "start": e["Start"],
             "end": e["End"], "price": e["PricePerHour"]}
            for e in bill.get("entries", [])
            if (e.get("ScalingGroupId") == scaling_group_id if scaling_group_id else e.get("ScalingGroupId"))]


def ledger_clock(bill: dict[str, Any]) -> dict[str, Any] | None:
    """localcloud's clock anchor, as the bill gives it: {scale, real, virtual}."""
    if "clock_anchor" not in bill:
        return None
    return {"scale": bill["time_scale"], **bill["clock_anchor"]}


def interruption_marks(interruptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """chaos.yml's interruptions as the timeline's marks: when chaos.yml acted (wall clock) and why."""
    return [{"wall_time": i["at"], "cause": i["cause"]} for i in interruptions]


def event_log_instances(event_logs: dict[str, Any], instances: list[dict[str, Any]], spot_price: float,
                        pay_as_you_go_price: float) -> list[dict[str, Any]]:
    """Bars without a ledger (a real account): each instance of `instances` ({instance_id, zone, charge})
    from the first to the last entry of its event log (text or entries; wall clock), at the given prices."""
    bars = []
    for item in instances:
        times = [e["time"] for e in log_entries(event_logs.get(item["instance_id"]))]
        if times:
            bars.append({**item, "start": min(times), "end": max(times),
                         "price": spot_price if item["charge"] == "spot" else pay_as_you_go_price})
    return bars


# What a scaling activity's cause says when an instance was taken from the group, and the short cause.
CAUSES = (
    (re.compile(r"spot instance (i-[\w-]+) is about to be reclaimed", re.I), "spot reclaim notice"),
    (re.compile(r"spot instance (i-[\w-]+) was reclaimed", re.I), "spot reclaimed"),
    (re.compile(r"instance (i-[\w-]+) left the scaling group \((?P<reason>[^)]*)\)", re.I), "instance left"),
    (re.compile(r"instance (i-[\w-]+)[^.]*unhealthy", re.I), "unhealthy instance"),
    (re.compile(r"replaces the pay-as-you-go instance (i-[\w-]+)", re.I), "back to spot"),
)


def activity_interruptions(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The interruptions the scaling activities tell of (oldest first), one per instance taken away:
    {time, instance_id, cause, activity}; a notice and the later reclaim of one instance count once."""
    found: dict[str, dict[str, Any]] = {}
    for activity in sorted(activities, key=lambda a: str(a.get("start_time", ""))):
        text = str(activity.get("cause", ""))
        for pattern, cause in CAUSES:
            for match in pattern.finditer(text):
                instance = match.group(1)
                reason = match.groupdict().get("reason")
                if instance not in found:
                    found[instance] = {"time": activity.get("start_time"), "instance_id": instance,
                                       "cause": f"{cause} ({reason})" if reason else cause,
                                       "activity": activity.get("scaling_activity_id")}
    return sorted(found.values(), key=lambda i: str(i["time"]))



def duration(seconds: float | None) -> str:
    """Seconds as a short duration: 42s, 7.5 min, 2.3 h."""
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
