"""chaos.yml's rounds and its report.

`chaos_rounds` lays chaos_actions out as the rounds chaos.yml runs; `save_interval_seconds` and
`chaos_pause` choose each round's seeded moment after a checkpoint. At the end `chaos_timeline` lays out
the timeline picture and `chaos_report` puts the report together (.cache/chaos-report.json): per
interruption the handover (the trainers' own step times) and where the time to the first resumed step went,
per fault that took nothing away what it cost, whether two trainers ever ran at once, the instances, the
cost against all pay-as-you-go and how training ended. `chaos_summary` gives the report in lines a person
reads. Each instance's event log is the agent's train_agent_events/<instance>.jsonl, as alicloud_training_info
returns it (parsed) or as text; each is parsed once per report.

The documentation of each filter is beside this file (<filter>.yml).
"""

from __future__ import annotations

import itertools
import random
import statistics
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.spotfirst.finetune.plugins.module_utils.cost_model import cost_lines, cost_report
from ansible_collections.spotfirst.finetune.plugins.module_utils.timeline import (
    event_log_instances,
    interruption_marks,
    ledger_clock,
    ledger_instances,
    log_entries,
    timeline_data,
)

# An event log: its text, or its entries (alicloud_training_info's event_logs).
EventLog = str | list[dict[str, Any]]

# An interruption of chaos_actions given as a bare action name gets these settings.
ROUND_DEFAULTS = {"action": "release", "notice": 120, "spot_outage": False, "upload_file": "optimizer.pt",
                  "rate": 0.2, "seconds": 20, "match": "*"}
# What each chaos action does: how it takes the training instance away (release: ECS DeleteInstance;
# reclaim: localcloud's reclaim with notice; kill: a kill fault strikes it; none: it is not taken away)
# and the faults (`localcloud fault add` arguments) it injects first. A kill fault ends the round's faults
# when it has struck; the others when the replacement has resumed.
CHAOS_ACTIONS = {
    "release": ("release", "release"),
    "reclaim": ("reclaim", "reclaim"),
    "kill_upload": ("kill", "killed while uploading a checkpoint ({upload_file})"),
    "kill_boot": ("release", "release, the replacement killed while booting"),
    "kill_mount": ("release", "release, the replacement killed while mounting the bucket"),
    "throttle_api": ("release", "release while the API throttles {rate:.0%} of the calls"),
    "oss_errors": ("release",
                   "release while OSS fails {rate:.0%} of the requests{on} (503 SlowDown, 500 InternalError)"),
    "net_cut": ("none", "the training instance cut off the network for {seconds} s"),
    "daemon_kill": ("none", "localcloud killed (SIGKILL) and started again after {seconds} s"),
}
SPOT_BACK_CAUSE = "spot capacity back, pay-as-you-go replaced by spot"


def round_faults(settings: dict[str, Any]) -> list[list[str]]:
    """The `localcloud fault add` arguments of a round's faults (net_cut's needs the instance: chaos_fault.yml)."""
    rate = float(settings["rate"])
    return {
        "kill_upload": [["oss", "--kill", "--method", "PUT", "--match", f"*/checkpoint-*/{settings['upload_file']}"]],
        # A new instance's first request to the metadata service comes while systemd boots it; its first
        # request to OSS is its mount's.
        "kill_boot": [["meta", "--kill", "--new"]],
        "kill_mount": [["oss", "--kill", "--new"]],
        "throttle_api": [["api", "--rate", f"{rate:g}", "--code", "Throttling.User"]],
        "oss_errors": [["oss", "--rate", f"{rate / 2:g}", "--code", code, "--match", settings["match"]]
                       for code in ("SlowDown", "InternalError")],
    }.get(settings["action"], [])


def chaos_rounds(actions: list[str | dict[str, Any]]) -> list[dict[str, Any]]:
    """chaos_actions as the rounds chaos.yml runs, in order (CHAOS_ACTIONS: what each action does).

    Each interruption gets its settings (ROUND_DEFAULTS filled in), its number in chaos_actions and its
    cause as the report says it; one with a spot outage is followed by a spot-back round (same number)
    that gives spot capacity back, so that the group replaces its pay-as-you-go instance by a spot one.
    """
    rounds = []
    for number, item in enumerate(actions or [], 1):
        settings = {**ROUND_DEFAULTS, **({"action": item} if isinstance(item, str) else item)}
        settings["spot_outage"] = boolean(settings["spot_outage"], strict=False)
        settings.setdefault("kind", settings["action"])  # a name of the caller's for the round (the report keeps it)
        interrupt, cause = CHAOS_ACTIONS.get(settings["action"], ("", settings["action"]))
        on = "" if settings["match"] == "*" else f" on {settings['match']}"
        cause = cause.format(**{**settings, "rate": float(settings["rate"]), "on": on})
        if settings["action"] == "reclaim":
            cause += f" (notice {settings['notice']} s)"
        if settings["spot_outage"]:
            cause += ", no spot capacity"
        faults = round_faults(settings)
        rounds.append({**settings, "number": number, "spot_back": False, "cause": cause, "interrupt": interrupt,
                       "faults": faults, "kills": any("--kill" in fault for fault in faults)})
        if settings["spot_outage"]:
            rounds.append({**rounds[-1], "action": "spot_back", "spot_outage": False, "spot_back": True,
                           "cause": SPOT_BACK_CAUSE, "interrupt": "spot_back", "faults": [], "kills": False,
                           "kind": "spot_back"})
    return rounds


def step_times(log: EventLog | None) -> list[tuple[int, float]]:
    """(step, time) of every step an instance trained, from its event log."""
    return [(int(entry["step"]), float(entry["time"])) for entry in log_entries(log) if entry["event"] == "step"]


def _events(log: EventLog | None, name: str) -> list[dict[str, Any]]:
    """The entries of an event log that are of one kind (step, save, start, ...)."""
    return [entry for entry in log_entries(log) if entry["event"] == name]


def save_interval_seconds(log: EventLog) -> float | None:
    """The trainer's seconds between two periodic saves, from its event log (median of the last five)."""
    saves = [entry["time"] for entry in _events(log, "save")]
    gaps = [later - earlier for earlier, later in itertools.pairwise(saves)][-5:]
    return round(statistics.median(gaps), 3) if gaps else None


def chaos_pause(interval: float | None, seed: Any, number: int) -> float:
    """A seeded random moment within the save interval (seconds after a checkpoint); 0 without one."""
    if not interval:
        return 0.0
    return round(random.Random(f"{seed}/{number}").uniform(0, float(interval)), 3)


def handover(logs: dict[str, EventLog], released: str, replacement: str) -> dict[str, Any]:
    """How training passed from one instance to the next, from their own step times: the last step of the
    released instance, the first of its replacement, the training gap between them (seconds), whether
    the two trained at once (their steps interleave) and how long the replacement's agent ran while the
    released instance still trained (the overlap window). None for what the logs do not show."""
    old, new = step_times(logs.get(released)), step_times(logs.get(replacement))
    started = [entry["time"] for entry in _events(logs.get(replacement), "start")]
    result: dict[str, Any] = {"last_step_released": old[-1][0] if old else None,
                              "first_step_replacement": new[0][0] if new else None,
                              "training_gap_seconds": None, "trained_at_once": None, "overlap_seconds": None}
    if old and new:
        result["training_gap_seconds"] = round(new[0][1] - old[-1][1], 2)
        result["trained_at_once"] = new[0][1] < old[-1][1]
    if old and started:
        result["overlap_seconds"] = round(max(0.0, old[-1][1] - started[0]), 2)
    return result


# The milestones of a resume, in the order they come after a release without notice: (name, what it marks,
# whose clock). A warm start (ms-swift 4 with a lease) starts swift before it chooses the checkpoint.
RESUME_MILESTONES = (
    ("launched", "the scaling activity launched the replacement", "localcloud's ledger"),
    ("booted", "the replacement's systemd started", "the instance's systemd"),
    ("running", "the instance was Running", "localcloud's ledger"),
    ("mounted", "the bucket was mounted", "the instance's systemd"),
    ("agent_started", "the training agent started", "the agent"),
    ("swift_started", "swift sft started", "the agent"),
    ("loaded", "the model and the data were loaded", "the trainer"),
    ("checkpoint_chosen", "the checkpoint was chosen and validated", "the agent"),
    ("first_step", "the first resumed step ended", "the trainer"),
)
MILESTONE_ORDER = {name: index for index, (name, _, _) in enumerate(RESUME_MILESTONES)}
# The agent's events that mark a milestone: {milestone: event}.
AGENT_MILESTONES = {"swift_started": "swift", "loaded": "loaded", "checkpoint_chosen": "resume", "first_step": "step"}


def ledger_times(ledger: dict[str, Any] | None, instance_id: str) -> dict[str, float]:
    """When localcloud's ledger says the instance was launched and reached Running, on the wall clock (the
    ledger's virtual times placed with the clock's anchor); {} without a ledger (a real account)."""
    ledger = ledger or {}
    entry = next((e for e in ledger.get("entries", []) if e.get("InstanceId") == instance_id), None)
    if entry is None or "clock_anchor" not in ledger:
        return {}
    scale = float(ledger["time_scale"])
    real, virtual = float(ledger["clock_anchor"]["real"]), float(ledger["clock_anchor"]["virtual"])
    return {name: real + (float(entry[key]) - virtual) / scale
            for name, key in (("launched", "Start"), ("running", "RunningAt")) if entry.get(key) is not None}


def resume_breakdown(interruption: dict[str, Any], logs: dict[str, EventLog],
                     ledger: dict[str, Any] | None = None) -> dict[str, Any]:
    """Where the time from an interruption (chaos.yml's `at`) to the replacement's first step went.

    From the components' own timestamps: the replacement's event log (its systemd's boot and mount times,
    which the agent's start event carries, the agent's start, swift's start, the trainer's loaded time, the
    checkpoint chosen with the seconds its validation took, the trainer's first step) and, on localcloud,
    its ledger (launch and Running). Each milestone in the order it happened, in seconds after the
    interruption and since the milestone before (`segment`); what the records do not show is left out.
    """
    fault = float(interruption["at"])
    events = log_entries(logs.get(interruption["replacement"]))
    times = ledger_times(ledger, interruption["replacement"])
    # The agent's first start on the replacement after the interruption (a restart adds another).
    start = next((e for e in events if e["event"] == "start" and e["time"] >= fault), None)
    validation = None
    if start is not None:
        times.update({name: float(start[name]) for name in ("booted", "mounted")
                      if isinstance(start.get(name), (int, float))})
        times["agent_started"] = start["time"]
        after = [e for e in events if e["time"] >= start["time"]]
        for milestone, name in AGENT_MILESTONES.items():
            found = next((e for e in after if e["event"] == name), None)
            if found is not None:
                times[milestone] = found["time"]
                if name == "resume":
                    validation = found.get("validation_seconds")
    milestones, previous = [], fault
    for name, when in sorted(times.items(), key=lambda item: (item[1], MILESTONE_ORDER[item[0]])):
        milestones.append({"milestone": name, "seconds": round(when - fault, 2), "segment": round(when - previous, 2)})
        previous = when
    return {"milestones": milestones, "validation_seconds": validation}


def with_handovers(interruptions: list[dict[str, Any]], logs: dict[str, EventLog],
                   ledger: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """chaos.yml's interruption records with how each handover went (`handover`) and where the time to the
    first resumed step went (`resume_breakdown`; `ledger` is localcloud's bill, when there is one)."""
    return [{**item, **handover(logs, item["released_instance"], item["replacement"]),
             "resume_breakdown": resume_breakdown(item, logs, ledger)} for item in interruptions or []]


def with_fault_effects(faults: list[dict[str, Any]], logs: dict[str, EventLog]) -> list[dict[str, Any]]:
    """chaos.yml's records of the faults that took nothing away (a network cut, localcloud's daemon killed),
    with what each cost the instance that rode it out, from its own step times: the steps it trained while
    the fault lasted, the seconds from the fault to its first step and to its first step after the fault,
    the steps trained again (a trainer that restarted from a checkpoint repeats steps; 0 when it went on)."""
    effects = []
    for item in faults or []:
        times = step_times((logs or {}).get(item["instance"]))
        after = [(step, at) for step, at in times if at >= item["at"]]
        after_end = [(step, at) for step, at in after if at >= item["until"]]
        before = [step for step, at in times if at < item["at"]]
        sequence = [step for step, _ in after]
        repeated = sum(earlier - later + 1 for earlier, later in itertools.pairwise(before[-1:] + sequence)
                       if later <= earlier)
        effects.append({
            **item,
            "steps_during": sum(1 for _, at in after if at < item["until"]),
            "seconds_to_first_step": round(after[0][1] - item["at"], 1) if after else None,
            "seconds_to_first_step_after_end": round(after_end[0][1] - item["at"], 1) if after_end else None,
            "steps_lost": repeated if after else None,
        })
    return effects


def save_steps(logs: dict[str, EventLog]) -> int | None:
    """The steps between two periodic saves: the most common distance between successive saves of one
    instance (a graceful stop saves in between)."""
    distances = [later - earlier for log in (logs or {}).values()
                 for earlier, later in itertools.pairwise([entry["step"] for entry in _events(log, "save")])]
    return statistics.mode(distances) if distances else None


def trainers_at_once(logs: dict[str, EventLog]) -> list[list[str]]:
    """The pairs of instances whose training spans (first to last step) overlap: two trainers at once."""
    spans = sorted((times[0][1], times[-1][1], name) for name, log in logs.items()
                   if (times := step_times(log)))
    return [[first[2], second[2]] for i, first in enumerate(spans) for second in spans[i + 1:]
            if second[0] < first[1]]


def trained_on(interruptions: list[dict[str, Any]], first_instance: dict[str, Any]) -> list[dict[str, Any]]:
    """The instances training ran on, in order: the first one (alicloud_scaling_info's instance) and each
    interruption's replacement, as the report lists them."""
    return [{"instance_id": first_instance["instance_id"], "zone": first_instance["zone_id"],
             "charge": first_instance["charge"]},
            *({"instance_id": item["replacement"], "zone": item["replacement_zone"],
               "charge": item["replacement_charge"]} for item in interruptions or [])]


def _group_id(group: dict[str, Any] | None) -> str:
    return ((group or {}).get("scaling_group") or {}).get("scaling_group_id") or ""


def _parsed(logs: dict[str, EventLog] | None) -> dict[str, list[dict[str, Any]]]:
    return {name: log_entries(log) for name, log in (logs or {}).items()}


def chaos_timeline(interruptions: list[dict[str, Any]], first_instance: dict[str, Any],
                   event_logs: dict[str, EventLog], bill: dict[str, Any] | None, group: dict[str, Any],
                   prices: dict[str, Any], now: float) -> dict[str, Any]:
    """The timeline picture's data (spotfirst.finetune.training_timeline draws it): one bar per training
    instance (localcloud's ledger, `bill`; on a real account, None, from the event logs), the steps, a mark
    per interruption, the cost against all pay-as-you-go. `prices`: {spot, pay_as_you_go} per hour; `now`
    ends the bars still running on a real account (localcloud's bill says its own now)."""
    logs = _parsed(event_logs)
    pay_as_you_go = float(prices["pay_as_you_go"])
    if bill:
        bars = ledger_instances(bill, _group_id(group))
    else:
        bars = event_log_instances(logs, trained_on(interruptions, first_instance), float(prices["spot"]),
                                   pay_as_you_go)
    return timeline_data(bars, logs, interruption_marks(interruptions or []), pay_as_you_go,
                         ledger_clock(bill) if bill else None, bill["now"] if bill else now)


def chaos_report(interruptions: list[dict[str, Any]], faults: list[dict[str, Any]], first_instance: dict[str, Any],
                 training: dict[str, Any], group: dict[str, Any], bill: dict[str, Any] | None,
                 reported: list[dict[str, Any]], prices: dict[str, Any], timeline: dict[str, Any],
                 timeline_path: str, started_at: float, now: float, failed: str | None = None) -> dict[str, Any]:
    """chaos.yml's report (.cache/chaos-report.json).

    `interruptions` and `faults`: chaos.yml's records of its rounds; `first_instance`: the training instance
    before the first round (alicloud_scaling_info's); `training`: alicloud_training_info's result with its
    `event_logs`; `group`: alicloud_scaling_info's result (instances, activities); `bill`: localcloud's bill
    (None on a real account); `reported`: alicloud_cms_event_info's events (the agent's report of the end);
    `prices`: {spot, pay_as_you_go}; `timeline`: chaos_timeline's data, drawn at `timeline_path`;
    `started_at` and `now`: when chaos.yml began and now (epoch seconds); `failed`: the task that failed and
    why, None when all went well.
    """
    logs = _parsed(training.get("event_logs"))
    instances = trained_on(interruptions, first_instance)
    charges = [first_instance["charge"], *(item["replacement_charge"] for item in interruptions or [])]
    scaling_group = group.get("scaling_group") or {}
    return {
        "interruptions": with_handovers(interruptions, logs, bill),
        # The faults that took nothing away: what each cost the instance that rode it out.
        "faults": with_fault_effects(faults, logs),
        "two_trainers_at_once": trainers_at_once(logs),
        "save_steps": save_steps(logs),
        "instances": instances,
        "charge_types_used": list(dict.fromkeys(charges)),
        "training": {key: training.get(key) for key in ("complete", "step", "max_steps", "newest_checkpoint")},
        "bill": bill or {},
        # The training (the group's instances) apart from the one-off template, bake and inference.
        "cost": cost_report(bill["entries"], prices["spot"], prices["pay_as_you_go"], _group_id(group))
        if bill else {},
        "prices": {"spot": prices["spot"], "pay_as_you_go": prices["pay_as_you_go"]},
        "activities": [activity.get("description") for activity in group.get("activities") or []],
        "ending": {"events": [event.get("result") for event in reported or []],
                   "desired_capacity": scaling_group.get("desired_capacity"),
                   "instances": len(group.get("instances") or [])},
        "seconds_total": round(float(now) - float(started_at), 1),
        # The task that failed and why (a round's check, the wait for the end); None when all went well.
        "failed": failed,
        "timeline": {"path": timeline_path, "clock": timeline["clock"],
                     "bars": [bar["instance_id"] for bar in timeline["bars"]],
                     "interruptions": [mark["cause"] for mark in timeline["interruptions"]],
                     "steps": len(timeline["steps"])},
    }


def chaos_summary(report: dict[str, Any]) -> list[str]:
    """The chaos report in lines a person reads."""
    training = report["training"]
    state = "complete" if training["complete"] else f"at step {training['step']}/{training['max_steps']}"
    lines = [f"Training {state}; newest checkpoint checkpoint-{training['newest_checkpoint']}."]
    if report.get("failed"):
        lines.insert(0, f"chaos.yml failed ({report['failed']}); what happened until then:")
    for number, item in enumerate(report["interruptions"], 1):
        lost = "?" if item["steps_lost"] is None else item["steps_lost"]
        gap = item.get("training_gap_seconds")
        at_once = {True: "; the two trained at once", False: "", None: ""}[item.get("trained_at_once")]
        lines.append(
            f"{number}. {item['cause']}: {item['released_instance']} ({item['released_charge']}, "
            f"{item['released_zone']}) -> {item['replacement']} ({item['replacement_charge']}, "
            f"{item['replacement_zone']}); resumed from {item['resumed_from_path']} at step {item['first_step']}, "
            f"{lost} steps lost, training gap {'?' if gap is None else gap} s{at_once}, first resumed step "
            f"{item['seconds_to_first_step']} s after the interruption")
        if milestones := (item.get("resume_breakdown") or {}).get("milestones"):
            lines.append("   the resume: " + ", ".join(f"{m['milestone'].replace('_', ' ')} +{m['seconds']} s"
                                                      for m in milestones))
    for item in report.get("faults") or []:
        went_on = item.get("seconds_to_first_step_after_end")
        lines.append(f"- {item['cause']} at step {item['step_at_fault']}: {item['instance']} trained "
                     f"{item.get('steps_during', '?')} steps meanwhile, {item.get('steps_lost', '?')} steps trained "
                     f"again, its first step after the fault {'?' if went_on is None else went_on} s after it began")
    if "two_trainers_at_once" in report:
        pairs = report["two_trainers_at_once"]
        lines.append("Two trainers at once: " + (", ".join(" and ".join(pair) for pair in pairs) if pairs else "never"))
    lines.append("Instances: " + ", ".join(f"{i['instance_id']} ({i['charge']})" for i in report["instances"]))
    ending = report.get("ending") or {}
    if ending.get("events"):
        said = "; ".join(f"{e.get('status')} at step {e.get('global_step')}/{e.get('max_steps')} "
                         f"({e.get('final_checkpoint')})" for e in ending["events"])
        lines.append(f"The agent reported: {said}; the group is at {ending['instances']} instances "
                     f"(desired capacity {ending['desired_capacity']})")
    bill = report.get("bill") or {}
    if bill:
        parts = [f"{kind} {line['hours']:.3f} h {line['cost']:.2f} RMB"
                 for kind, line in bill.get("by_charge_type", {}).items()]
        lines.append(f"Cost: {bill['total']:.2f} RMB ({'; '.join(parts)}; hours on localcloud's virtual clock)")
    if report.get("cost"):
        lines += cost_lines(report["cost"])
    if (report.get("timeline") or {}).get("path"):
        lines.append(f"Timeline: {report['timeline']['path']}")
    return lines


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"chaos_rounds": chaos_rounds, "save_interval_seconds": save_interval_seconds,
                "chaos_pause": chaos_pause, "chaos_timeline": chaos_timeline, "chaos_report": chaos_report,
                "chaos_summary": chaos_summary}
