"""The playbooks' filters (playbooks/filter_plugins/training.py) on what a real agent-driven run wrote."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import SAVE_STEPS, TOTAL_STEPS

pytestmark = pytest.mark.slow


def test_a_fresh_start_and_its_steps_are_read_from_train_log(trained: Path, filters: ModuleType) -> None:
    train_log = trained.parent / "train-service-log" / "train.log"
    start = filters.train_log_resume(train_log.read_text())
    assert start == {"started": True, "fresh": True, "checkpoint": None, "resumed_from": 0, "first_step": 1,
                     "max_steps": TOTAL_STEPS}
    # chaos.yml reads train.log on the instance through this grep: it keeps every line the parser needs.
    grep = subprocess.run(filters.train_log_grep(str(train_log)), capture_output=True, text=True, check=True)
    assert filters.train_log_resume(grep.stdout) == start


def test_the_steps_and_checkpoints_are_read_from_logging_jsonl_and_the_output_keys(trained: Path,
                                                                                   filters: ModuleType) -> None:
    logging_jsonl = (trained / "logging.jsonl").read_text()
    assert filters.logging_steps(logging_jsonl) == list(range(1, TOTAL_STEPS + 1))
    assert filters.logging_max_steps(logging_jsonl) == TOTAL_STEPS
    keys = [f"output/{path.relative_to(trained).as_posix()}" for path in trained.rglob("*") if path.is_file()]
    assert filters.checkpoint_steps(keys, "output/") == [*range(SAVE_STEPS, TOTAL_STEPS, SAVE_STEPS), TOTAL_STEPS]
