"""The collection's filters (plugins/filter/training.py and chaos.py) and the training_state module_utils on
what a real agent-driven run wrote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from ansible_collections.spotfirst.finetune.plugins.filter import chaos, training
from ansible_collections.spotfirst.finetune.plugins.module_utils import training_state
from ansible_collections.spotfirst.finetune.plugins.module_utils.training_protocol import EVENTS_DIR

from .conftest import SAVE_STEPS, TOTAL_STEPS

pytestmark = pytest.mark.slow


def test_a_fresh_start_and_its_steps_are_read_from_train_log(trained: Path) -> None:
    train_log = trained.parent / "train-service-log" / "train.log"
    start = training.train_log_resume(train_log.read_text())
    assert start == {"started": True, "fresh": True, "checkpoint": None, "resumed_from": 0, "first_step": 1,
                     "max_steps": TOTAL_STEPS}
    # chaos.yml reads train.log on the instance through this grep: it keeps every line the parser needs.
    grep = subprocess.run(training.train_log_grep(str(train_log)), capture_output=True, text=True, check=True)
    assert training.train_log_resume(grep.stdout) == start


def test_the_steps_and_checkpoints_are_read_from_logging_jsonl_and_the_output_keys(trained: Path) -> None:
    logging_jsonl = (trained / "logging.jsonl").read_text()
    assert training_state.logging_steps(logging_jsonl) == list(range(1, TOTAL_STEPS + 1))
    assert training_state.logging_max_steps(logging_jsonl) == TOTAL_STEPS
    keys = [f"output/{path.relative_to(trained).as_posix()}" for path in trained.rglob("*") if path.is_file()]
    saved = [*range(SAVE_STEPS, TOTAL_STEPS, SAVE_STEPS), TOTAL_STEPS]
    assert training_state.checkpoint_steps(keys, "output/") == saved


def test_the_agents_event_log_times_each_step_and_save_with_the_trainers_clock(trained: Path) -> None:
    logs = list((trained / EVENTS_DIR).glob("*.jsonl"))
    assert len(logs) == 1, logs  # one agent (no instance here: named after the host)
    text = logs[0].read_text()
    events = training_state.agent_events(text)
    assert events[0]["event"] == "start" and events[-1] == {**events[-1], "event": "exit", "code": 0}
    steps = chaos.step_times(text)
    assert [step for step, _ in steps] == list(range(1, TOTAL_STEPS + 1))
    assert [time for _, time in steps] == sorted(time for _, time in steps)
    saves = [entry["step"] for entry in events if entry["event"] == "save"]
    assert saves == [*range(SAVE_STEPS, TOTAL_STEPS, SAVE_STEPS), TOTAL_STEPS]
    interval = chaos.save_interval_seconds(text)
    assert 0 < interval < steps[-1][1] - steps[0][1]
    # chaos.yml's moment: seeded, within the interval, the same for the same seed and round.
    pauses = [chaos.chaos_pause(interval, 7, number) for number in range(1, 6)]
    assert all(0 <= pause <= interval for pause in pauses) and len(set(pauses)) == 5
    assert pauses == [chaos.chaos_pause(interval, 7, number) for number in range(1, 6)]
    assert chaos.chaos_pause(None, 7, 1) == 0


def test_a_handover_is_read_from_the_two_instances_step_times(trained: Path) -> None:
    text = next((trained / EVENTS_DIR).glob("*.jsonl")).read_text()
    steps = [entry for entry in training_state.agent_events(text) if entry["event"] == "step"]

    def log(chosen: list[dict], first_at: float | None = None) -> str:
        offset = 0.0 if first_at is None else first_at - chosen[0]["time"]
        return "".join(json.dumps({**entry, "time": entry["time"] + offset}) + "\n" for entry in chosen)

    # i-old trained steps 1-10 and lost 9-10; i-new resumed from 8 five seconds after i-old's last step.
    old = log(steps[:10])
    new = log(steps[8:20], first_at=steps[9]["time"] + 5)
    result = chaos.handover({"i-old": old, "i-new": new}, "i-old", "i-new")
    assert result == {"last_step_released": 10, "first_step_replacement": 9, "training_gap_seconds": 5.0,
                      "trained_at_once": False, "overlap_seconds": None}
    assert chaos.trainers_at_once({"i-old": old, "i-new": new}) == []
    # Had i-new started while i-old trained on, their steps would interleave.
    early = log(steps[8:20], first_at=steps[7]["time"])  # i-new began when i-old trained step 8
    assert chaos.handover({"i-old": old, "i-new": early}, "i-old", "i-new")["trained_at_once"] is True
    later = log(steps[20:30], first_at=steps[-1]["time"] + 60)
    assert chaos.trainers_at_once({"i-old": old, "i-new": early, "i-later": later}) == [["i-old", "i-new"]]
    assert chaos.handover({"i-old": old}, "i-old", "i-gone")["training_gap_seconds"] is None
    # The logs as alicloud_training_info returns them (parsed) read the same.
    parsed = {name: training_state.agent_events(text) for name, text in {"i-old": old, "i-new": new}.items()}
    assert chaos.handover(parsed, "i-old", "i-new") == result
