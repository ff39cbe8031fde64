"""The playbooks' filters that read where training stands (playbooks/filter_plugins/training.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SPEC = importlib.util.spec_from_file_location(
    "training_filters", Path(__file__).resolve().parents[2] / "playbooks" / "filter_plugins" / "training.py")
training = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(training)


def test_checkpoint_steps_are_the_complete_checkpoints_in_step_order():
    keys = ["output/", "output/checkpoint-12/trainer_state.json", "output/checkpoint-3/trainer_state.json",
            "output/checkpoint-15/adapter_model.safetensors", "output/checkpoint-9/trainer_state.json",
            "other/checkpoint-30/trainer_state.json", "output/checkpoint-6/trainer_stateXjson"]
    assert training.checkpoint_steps(keys, "output/") == [3, 9, 12]
    assert training.checkpoint_steps([], "output/") == []


def test_train_log_resume_reads_the_checkpoint_and_the_first_step():
    log = "\n".join([
        "2026-11-28 10:36:52,923 train-agent INFO newest valid checkpoint: /mnt/oss-data/output/checkpoint-6 "
        "(global step 6)",
        "{'loss': '7.1', 'global_step/max_steps': '7/150', 'elapsed_time': '1s'}",
        "{'loss': '7.0', 'global_step/max_steps': '8/150', 'elapsed_time': '2s'}",
    ])
    resume = training.train_log_resume(log)
    assert resume["fresh"] is False and resume["resumed_from"] == 6 and resume["first_step"] == 7
    assert resume["checkpoint"].endswith("checkpoint-6") and resume["max_steps"] == 150
    fresh = training.train_log_resume("x train-agent INFO no valid checkpoint: starting a new training")
    assert fresh["fresh"] is True and fresh["first_step"] is None


def test_steps_lost_counts_the_steps_past_the_checkpoint_resumed_from():
    # Released at step 8 (two steps past checkpoint-6); the replacement resumes at 7.
    assert training.steps_lost([1, 2, 3, 4, 5, 6, 7, 8, 7, 8, 9], 6, 6) == 2
    assert training.steps_lost([1, 2, 3, 4, 5, 6, 7], 6, 6) == 0
    assert training.steps_lost([1, 2, 3, 4, 5, 6], 6, 6) is None
