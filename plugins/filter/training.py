"""Where training stands, as the playbooks read it: the agent's train.log on a replacement (how it
started, its first step), the steps lost to an interruption, progress lines for the waits, the scaling
group's training candidates, and swift infer's answers.

The names of the agent's log lines come from the collection's training_protocol module_utils, the one
definition the agent holds too; the documentation of each filter is beside this file (<filter>.yml).
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.spotfirst.finetune.plugins.module_utils.timeline import duration
from ansible_collections.spotfirst.finetune.plugins.module_utils.training_protocol import (
    FRESH_MARK,
    RESUME_MARK,
    RESUME_RE,
    STEP_KEY,
    STEP_RE,
)
from ansible_collections.spotfirst.finetune.plugins.module_utils.training_state import json_lines


def infer_answers(text: str) -> list[dict[str, str]]:
    """The question and answer of each line of `swift infer --result_path`'s JSON lines."""
    answers = []
    for row in json_lines(text):
        questions = [m.get("content", "") for m in row.get("messages", []) if m.get("role") == "user"]
        answers.append({"question": questions[0] if questions else "", "answer": row.get("response", "")})
    return answers


def train_log_grep(path: str) -> list[str]:
    """The command that prints the lines of the agent's train.log at `path` that train_log_resume reads."""
    return ["grep", "-F", "-e", RESUME_MARK, "-e", FRESH_MARK, "-e", STEP_KEY, path]


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
    start = "a new training (no valid checkpoint)" if resume["fresh"] else f"resuming from {resume['checkpoint']}"
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


def training_progress(info: dict[str, Any]) -> str:
    """One line from alicloud_training_info's result: step 37/150 (24.7 %), 12 min left, lease i-...,
    checkpoint-30 (12s old), 9.5 steps/min (or complete, or not started). What a reader looks for comes first:
    on a narrow terminal the line redrawn in place is cut at its end."""
    if info.get("complete"):
        return f"complete: step {info.get('step')}/{info.get('max_steps')}, checkpoint-{info.get('newest_checkpoint')}"
    if info.get("state") == "not started":
        holder = (info.get("lease") or {}).get("holder")
        return f"not started yet (no step logged{', lease held by ' + holder if holder else ''})"
    parts = [f"step {info.get('step')}/{info.get('max_steps') or '?'}"
             + (f" ({info['percent']} %)" if info.get("percent") is not None else "")]
    if info.get("steps_per_minute"):
        parts.append(f"{duration(info.get('eta_seconds'))} left")
    holder = (info.get("lease") or {}).get("holder")
    parts.append(f"lease {holder}" if holder else "no lease held")
    if info.get("newest_checkpoint"):
        age = duration(info.get("newest_checkpoint_age_seconds"))
        parts.append(f"checkpoint-{info['newest_checkpoint']} ({age} old)")
    else:
        parts.append("no checkpoint yet")
    if info.get("steps_per_minute"):
        parts.append(f"{info['steps_per_minute']} steps/min")
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
        return {"train_log_grep": train_log_grep, "train_log_resume": train_log_resume,
                "resume_progress": resume_progress, "steps_lost": steps_lost,
                "training_progress": training_progress, "group_candidates": group_candidates,
                "group_progress": group_progress, "infer_answers": infer_answers}
