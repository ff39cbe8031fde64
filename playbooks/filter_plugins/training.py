"""Filters that read where training stands from its logs (ms-swift's logging.jsonl, the agent's train.log)
and lay out chaos.yml's rounds."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean

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
ROUND_DEFAULTS = {"action": "release", "notice": 120, "spot_outage": False}
SPOT_BACK_CAUSE = "spot capacity back, pay-as-you-go replaced by spot"


def checkpoint_steps(keys: list[str], prefix: str) -> list[int]:
    """The global steps of the complete checkpoints among object keys (trainer_state.json is written
    last), ascending."""
    pattern = re.compile(re.escape(prefix) + r"checkpoint-(\d+)/trainer_state\.json$")
    return sorted({int(m.group(1)) for key in keys or [] if (m := pattern.match(key))})


def logging_steps(text: str) -> list[int]:
    """The global step of every training log line of logging.jsonl, in file order."""
    steps = []
    for line in (text or "").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        value = entry.get(AGENT.STEP_KEY) if isinstance(entry, dict) else None
        if isinstance(value, str) and "/" in value and "train_runtime" not in entry:
            steps.append(int(value.split("/")[0]))
    return steps


def logging_max_steps(text: str) -> int | None:
    """The total number of steps logging.jsonl announces (None before the first step)."""
    for line in reversed((text or "").splitlines()):
        match = STEP_RE.search(line.replace('"', "'"))
        if match:
            return int(match.group("max"))
    return None


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


def chaos_rounds(actions: list[str | dict[str, Any]]) -> list[dict[str, Any]]:
    """chaos_actions as the rounds chaos.yml runs, in order.

    Each interruption gets its settings (ROUND_DEFAULTS filled in), its number in chaos_actions and its
    cause as the report says it; one with a spot outage is followed by a spot-back round (same number)
    that gives spot capacity back, so that the group replaces its pay-as-you-go instance by a spot one.
    """
    rounds = []
    for number, item in enumerate(actions or [], 1):
        settings = {**ROUND_DEFAULTS, **({"action": item} if isinstance(item, str) else item)}
        settings["spot_outage"] = boolean(settings["spot_outage"], strict=False)
        cause = settings["action"]
        if settings["action"] == "reclaim":
            cause += f" (notice {settings['notice']} s)"
        if settings["spot_outage"]:
            cause += ", no spot capacity"
        rounds.append({**settings, "number": number, "spot_back": False, "cause": cause})
        if settings["spot_outage"]:
            rounds.append({**rounds[-1], "action": "spot_back", "spot_outage": False, "spot_back": True,
                           "cause": SPOT_BACK_CAUSE})
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
    for number, item in enumerate(report["interruptions"], 1):
        lost = "?" if item["steps_lost"] is None else item["steps_lost"]
        lines.append(
            f"{number}. {item['cause']}: {item['released_instance']} ({item['released_charge']}, "
            f"{item['released_zone']}) -> {item['replacement']} ({item['replacement_charge']}, "
            f"{item['replacement_zone']}); resumed from {item['resumed_from_path']} at step {item['first_step']}, "
            f"{lost} steps lost, first resumed step {item['seconds_to_first_step']} s after the release")
    lines.append("Instances: " + ", ".join(f"{i['instance_id']} ({i['charge']})" for i in report["instances"]))
    bill = report.get("bill") or {}
    if bill:
        parts = [f"{kind} {line['hours']:.3f} h {line['cost']:.2f} RMB"
                 for kind, line in bill.get("by_charge_type", {}).items()]
        lines.append(f"Cost: {bill['total']:.2f} RMB ({'; '.join(parts)}; hours on localcloud's virtual clock)")
    return lines


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"checkpoint_steps": checkpoint_steps, "logging_steps": logging_steps,
                "logging_max_steps": logging_max_steps,
                "train_log_grep": train_log_grep, "train_log_resume": train_log_resume,
                "steps_lost": steps_lost, "chaos_rounds": chaos_rounds,
                "replacement_instance": replacement_instance, "chaos_summary": chaos_summary}
