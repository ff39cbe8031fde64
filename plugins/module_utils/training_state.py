"""Where a training stands, from what it writes to its output prefix: ms-swift's logging.jsonl, the
checkpoints (trainer_state.json is written last, the agent's manifest once the save is checked), the
agent's completion marker, its lease and each instance's event log.

Pure functions on texts and object keys, shared by alicloud_training_info and the playbooks' filters.
The names they look for (the agent's manifest, completion marker and event log, ms-swift's step key) are
training_protocol's, the one definition the agent's package holds too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ansible_collections.spotfirst.finetune.plugins.module_utils.training_protocol import (
    COMPLETE_MARKER,  # noqa: F401  re-exported: alicloud_training_info imports it from here
    EVENTS_DIR,
    MANIFEST_NAME,
    STEP_KEY,
    STEP_RE,
    TRAINER_STATE,
    Event,
)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines text, in order (other lines are skipped: a line cut short)."""
    entries = []
    for line in (text or "").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def logging_steps(text: str) -> list[int]:
    """The global step of every training log line of logging.jsonl, in file order."""
    return [int(value.split("/")[0]) for entry in json_lines(text)
            if isinstance(value := entry.get(STEP_KEY), str) and "/" in value and "train_runtime" not in entry]


def logging_max_steps(text: str) -> int | None:
    """The total number of steps logging.jsonl announces (None before the first step)."""
    for line in reversed((text or "").splitlines()):
        match = STEP_RE.search(line.replace('"', "'"))
        if match:
            return int(match.group("max"))
    return None


def logging_ended(text: str, steps: list[int], max_steps: int | None) -> bool:
    """Whether logging.jsonl (`text`, with its `logging_steps` and `logging_max_steps`) ends with ms-swift's
    end line at its last step (a graceful stop writes the end line too, before the last step)."""
    lines = (text or "").strip().splitlines()
    return bool(lines and "last_model_checkpoint" in lines[-1] and max_steps and steps and steps[-1] >= max_steps)


def checkpoint_steps(keys: list[str], prefix: str) -> list[int]:
    """The global steps of the complete checkpoints among object keys (trainer_state.json is written
    last), ascending."""
    pattern = re.compile(re.escape(prefix) + r"checkpoint-(\d+)/" + re.escape(TRAINER_STATE) + "$")
    return sorted({int(m.group(1)) for key in keys or [] if (m := pattern.match(key))})


def valid_checkpoint_steps(keys: list[str], prefix: str) -> list[int]:
    """The global steps of the checkpoints whose save is complete (trainer_state.json) and checked by the
    agent (its manifest, written once the save is complete), ascending."""
    manifests = re.compile(re.escape(prefix) + r"checkpoint-(\d+)/" + re.escape(MANIFEST_NAME) + "$")
    checked = {int(m.group(1)) for key in keys or [] if (m := manifests.match(key))}
    return [step for step in checkpoint_steps(keys, prefix) if step in checked]


def agent_events(text: str) -> list[dict[str, Any]]:
    """The entries of an instance's event log (the agent's train_agent_events/<instance>.jsonl), in order."""
    return [entry for entry in json_lines(text) if isinstance(entry.get("time"), (int, float)) and "event" in entry]


def event_log_name(key: str, prefix: str) -> str | None:
    """The instance whose event log is at `key` under the output `prefix`; None for any other key."""
    match = re.match(re.escape(prefix) + re.escape(EVENTS_DIR) + r"/(?P<name>[^/]+)\.jsonl$", key or "")
    return match["name"] if match else None


def step_times(text: str) -> list[tuple[int, float]]:
    """(step, time) of every step an instance trained, from its event log."""
    return [(int(entry["step"]), float(entry["time"])) for entry in agent_events(text) if entry["event"] == Event.STEP]


def steps_per_minute(times: list[tuple[int, float]], now: float, window: float) -> float | None:
    """Steps trained per minute over the last `window` seconds before `now` (the steps of one trainer, from
    its event log); None with fewer than two steps in the window."""
    recent = [(step, at) for step, at in times if now - at <= window]
    if len(recent) < 2 or recent[-1][1] <= recent[0][1]:
        return None
    return round(60 * (recent[-1][0] - recent[0][0]) / (recent[-1][1] - recent[0][1]), 2)


def eta_seconds(step: int, max_steps: int | None, rate: float | None) -> float | None:
    """Seconds until the last step at `rate` steps per minute; None without a rate or a total."""
    if not rate or not max_steps:
        return None
    return round(60 * max(0, max_steps - step) / rate, 1)
