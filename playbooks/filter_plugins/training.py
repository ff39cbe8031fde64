"""Filters that read where training stands from its logs (ms-swift's logging.jsonl, the agent's train.log)
and lay out chaos.yml's rounds."""

from __future__ import annotations

import importlib.util
import itertools
import random
import statistics
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.spotfirst.finetune.plugins.module_utils.training_state import (
    agent_events,
    checkpoint_steps,
    event_log_name,
    json_lines,
    logging_max_steps,
    logging_steps,
    step_times,
    valid_checkpoint_steps,
)

AGENT_FILE = Path(__file__).resolve().parents[2] / "roles" / "train_service" / "files" / "train_agent.py"
AGENT_MODULE = "spotfirst_finetune_train_agent"


def load_agent() -> ModuleType:
    """The training agent's module, whose log lines these filters read (standard library only)."""
    if AGENT_MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(AGENT_MODULE, AGENT_FILE)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load the training agent from {AGENT_FILE}")
        module = importlib.util.module_from_spec(spec)
        # Its dataclasses look their module up in sys.modules.
        sys.modules[AGENT_MODULE] = module
        spec.loader.exec_module(module)
    return sys.modules[AGENT_MODULE]


AGENT = load_agent()
RESUME_RE = AGENT.RESUME_RE
FRESH_MARK = AGENT.FRESH_MARK
STEP_RE = AGENT.STEP_RE
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


SPOT_BACK_CAUSE = "spot capacity back, pay-as-you-go replaced by spot"


def infer_answers(text: str) -> list[dict[str, str]]:
    """The question and answer of each line of `swift infer --result_path`'s JSON lines."""
    answers = []
    for row in json_lines(text):
        questions = [m.get("content", "") for m in row.get("messages", []) if m.get("role") == "user"]
        answers.append({"question": questions[0] if questions else "", "answer": row.get("response", "")})
    return answers


def train_log_grep(path: str) -> list[str]:
    """The command that prints the lines of the agent's train.log at `path` that train_log_resume reads."""
    return ["grep", "-F", "-e", AGENT.RESUME_MARK, "-e", FRESH_MARK, "-e", AGENT.STEP_KEY, path]


def train_log_resume(text: str) -> dict[str, Any]:
    """How the agent started in train.log: the checkpoint it resumed from and the first step it trained.

    Looks at the first start in the log (a replacement's log holds its own starts only); a restart
    of the service after a crash appends another start, which does not change the answer.
    """
    result: dict[str, Any] = {"started": False, "fresh": None, "checkpoint": None, "resumed_from": None,
                              "first_step": None, "max_steps": None}
    for line in (text or "").splitlines():
        if not result["started"]:
            match = RESUME_RE.search(line)
            if match:
                result.update(started=True, fresh=False, checkpoint=match.group("path"),
                              resumed_from=int(match.group("step")))
            elif FRESH_MARK in line:
                result.update(started=True, fresh=True, resumed_from=0)
            continue
        step = STEP_RE.search(line)
        if step:
            result.update(first_step=int(step.group("step")), max_steps=int(step.group("max")))
            break
    return result


def resume_progress(text: str) -> str:
    """One line from the lines of a replacement's train.log that train_log_grep prints: how far its start is."""
    resume = train_log_resume(text)
    if not resume["started"]:
        return "the agent has not chosen a checkpoint yet"
    start = "no valid checkpoint: a new training" if resume["fresh"] else f"resuming from {resume['checkpoint']}"
    if resume["first_step"] is None:
        return f"{start}, loading (no step yet)"
    return f"{start}, first step {resume['first_step']}/{resume['max_steps']}"


def steps_lost(steps: list[int], seen_at_release: int, resumed_from: int) -> int | None:
    """Steps the released instance had trained past the checkpoint its replacement resumed from.

    `steps` is logging.jsonl's step sequence after the resume, `seen_at_release` how many entries it
    had at the release. The released instance's entries go on rising from there until the first
    entry that does not rise: the replacement's first step (resumed_from + 1). None when the
    sequence does not show the replacement's first step yet.
    """
    index = max(0, seen_at_release - 1)
    if resumed_from + 1 not in steps[index:]:
        return None
    while index + 1 < len(steps) and steps[index + 1] > steps[index]:
        index += 1
    if index + 1 == len(steps):
        return 0
    return max(0, steps[index] - resumed_from)


def _events(text: str, name: str) -> list[dict[str, Any]]:
    """The entries of an event log that are of one kind (step, save, start, ...)."""
    return [entry for entry in agent_events(text) if entry["event"] == name]


def event_log_keys(keys: list[str], prefix: str) -> list[str]:
    """The keys of the instances' event logs among the object keys under the output `prefix`."""
    return [key for key in keys or [] if event_log_name(key, prefix)]


def event_logs(results: list[dict[str, Any]], prefix: str) -> dict[str, str]:
    """{instance id: its event log} from the results of alicloud_oss_object gets looped over the logs' keys
    (`item`, or `key`, and `content`) under `prefix` (the output prefix)."""
    return {name: result.get("content") or "" for result in results or []
            if (name := event_log_name(str(result.get("key") or result.get("item") or ""), prefix))}


def save_interval_seconds(text: str) -> float | None:
    """The trainer's seconds between two periodic saves, from its event log (median of the last five)."""
    saves = [entry["time"] for entry in _events(text, "save")]
    gaps = [later - earlier for earlier, later in itertools.pairwise(saves)][-5:]
    return round(statistics.median(gaps), 3) if gaps else None


def chaos_pause(interval: float | None, seed: Any, number: int) -> float:
    """A seeded random moment within the save interval (seconds after a checkpoint); 0 without one."""
    if not interval:
        return 0.0
    return round(random.Random(f"{seed}/{number}").uniform(0, float(interval)), 3)


def handover(logs: dict[str, str], released: str, replacement: str) -> dict[str, Any]:
    """How training passed from one instance to the next, from their own step times: the last step of the
    released instance, the first of its replacement, the training gap between them (seconds), whether
    the two trained at once (their steps interleave) and how long the replacement's agent ran while the
    released instance still trained (the overlap window). None for what the logs do not show."""
    old, new = step_times(logs.get(released, "")), step_times(logs.get(replacement, ""))
    started = [entry["time"] for entry in _events(logs.get(replacement, ""), "start")]
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


def resume_breakdown(interruption: dict[str, Any], logs: dict[str, str],
                     ledger: dict[str, Any] | None = None) -> dict[str, Any]:
    """Where the time from an interruption (chaos.yml's `at`) to the replacement's first step went.

    From the components' own timestamps: the replacement's event log (its systemd's boot and mount times,
    which the agent's start event carries, the agent's start, swift's start, the trainer's loaded time, the
    checkpoint chosen with the seconds its validation took, the trainer's first step) and, on localcloud,
    its ledger (launch and Running). Each milestone in the order it happened, in seconds after the
    interruption and since the milestone before (`segment`); what the records do not show is left out.
    """
    fault = float(interruption["at"])
    events = agent_events(logs.get(interruption["replacement"], ""))
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


def with_handovers(interruptions: list[dict[str, Any]], logs: dict[str, str],
                   ledger: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """chaos.yml's interruption records with how each handover went (`handover`) and where the time to the
    first resumed step went (`resume_breakdown`; `ledger` is localcloud's bill, when there is one)."""
    return [{**item, **handover(logs, item["released_instance"], item["replacement"]),
             "resume_breakdown": resume_breakdown(item, logs, ledger)} for item in interruptions or []]


def with_fault_effects(faults: list[dict[str, Any]], logs: dict[str, str]) -> list[dict[str, Any]]:
    """chaos.yml's records of the faults that took nothing away (a network cut, localcloud's daemon killed),
    with what each cost the instance that rode it out, from its own step times: the steps it trained while
    the fault lasted, its first step after the fault began and after it ended (seconds after its start), and
    the steps trained again (a trainer that restarted from a checkpoint repeats steps; 0 when it went on)."""
    effects = []
    for item in faults or []:
        times = step_times((logs or {}).get(item["instance"], ""))
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


def save_steps(logs: dict[str, str]) -> int | None:
    """The steps between two periodic saves: the most common distance between successive saves of one
    instance (a graceful stop saves in between)."""
    distances = [later - earlier for text in (logs or {}).values()
                 for earlier, later in itertools.pairwise([entry["step"] for entry in _events(text, "save")])]
    return statistics.mode(distances) if distances else None


def trainers_at_once(logs: dict[str, str]) -> list[list[str]]:
    """The pairs of instances whose training spans (first to last step) overlap: two trainers at once."""
    spans = sorted((times[0][1], times[-1][1], name) for name, text in logs.items()
                   if (times := step_times(text)))
    return [[first[2], second[2]] for i, first in enumerate(spans) for second in spans[i + 1:]
            if second[0] < first[1]]


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


def replacement_instance(interruption: dict[str, Any]) -> dict[str, Any]:
    """The instance an interruption brought, as the report lists instances."""
    return {"instance_id": interruption["replacement"], "zone": interruption["replacement_zone"],
            "charge": interruption["replacement_charge"]}


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
    return lines


def minutes(seconds: float | None) -> str:
    """Seconds as a short duration: 42s, 7.5 min, 2.3 h."""
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def training_progress(info: dict[str, Any]) -> str:
    """One line from alicloud_training_info's result: step 37/150 (24.7 %), checkpoint-30 (12s old),
    9.5 steps/min, 12 min left, lease i-... (or complete, or not started)."""
    if info.get("complete"):
        return f"complete: step {info.get('step')}/{info.get('max_steps')}, checkpoint-{info.get('newest_checkpoint')}"
    if info.get("state") == "not started":
        holder = (info.get("lease") or {}).get("holder")
        return f"not started yet (no step logged{', lease held by ' + holder if holder else ''})"
    parts = [f"step {info.get('step')}/{info.get('max_steps') or '?'}"
             + (f" ({info['percent']} %)" if info.get("percent") is not None else "")]
    if info.get("newest_checkpoint"):
        age = minutes(info.get("newest_checkpoint_age_seconds"))
        parts.append(f"checkpoint-{info['newest_checkpoint']} ({age} old)")
    else:
        parts.append("no checkpoint yet")
    if info.get("steps_per_minute"):
        parts.append(f"{info['steps_per_minute']} steps/min, {minutes(info.get('eta_seconds'))} left")
    holder = (info.get("lease") or {}).get("holder")
    parts.append(f"lease {holder}" if holder else "no lease held")
    return ", ".join(parts)


def group_candidates(info: dict[str, Any], exclude: list[str] | None = None, spot_only: Any = False
                     ) -> list[dict[str, Any]]:
    """The scaling group's instances that can be the training instance (alicloud_scaling_info's result): in
    service, Running, not in `exclude`, spot ones only with `spot_only`."""
    charges = ("spot",) if boolean(spot_only, strict=False) else ("spot", "pay-as-you-go")
    return [i for i in (info or {}).get("instances") or []
            if i.get("lifecycle_state") == "InService" and i.get("status") == "Running"
            and i.get("instance_id") not in (exclude or []) and i.get("charge") in charges]


def group_progress(info: dict[str, Any]) -> str:
    """One line from alicloud_scaling_info's result: each instance's id, charge, zone, lifecycle state and
    ECS status, and the latest scaling activity."""
    instances = [f"{i.get('instance_id')} {i.get('charge')} {i.get('zone_id')} {i.get('lifecycle_state')}/"
                 f"{i.get('status') or '?'}" for i in (info or {}).get("instances") or []]
    activity = ((info or {}).get("activities") or [{}])[0]
    group = (info or {}).get("scaling_group") or {}
    line = f"desired {group.get('desired_capacity', '?')}, instances: {'; '.join(instances) or 'none'}"
    if activity:
        line += f" | latest activity: {activity.get('status_code')} {activity.get('progress', '')}% " \
                f"{(activity.get('description') or '')[:80]}"
    return line


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"checkpoint_steps": checkpoint_steps, "logging_steps": logging_steps,
                "logging_max_steps": logging_max_steps,
                "train_log_grep": train_log_grep, "train_log_resume": train_log_resume,
                "steps_lost": steps_lost, "chaos_rounds": chaos_rounds,
                "agent_events": agent_events, "event_logs": event_logs, "event_log_keys": event_log_keys,
                "save_interval_seconds": save_interval_seconds, "chaos_pause": chaos_pause,
                "handover": handover, "with_handovers": with_handovers, "resume_breakdown": resume_breakdown,
                "trainers_at_once": trainers_at_once,
                "save_steps": save_steps, "with_fault_effects": with_fault_effects,
                "replacement_instance": replacement_instance, "chaos_summary": chaos_summary,
                "valid_checkpoint_steps": valid_checkpoint_steps, "infer_answers": infer_answers,
                "training_progress": training_progress, "group_candidates": group_candidates,
                "group_progress": group_progress, "resume_progress": resume_progress}
