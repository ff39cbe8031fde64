"""The playbooks' filters that read where training stands (playbooks/filter_plugins/training.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("training_filters", ROOT / "playbooks" / "filter_plugins" / "training.py")
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


def test_chaos_rounds_fill_in_the_settings_and_follow_a_spot_outage_with_spot_coming_back():
    rounds = training.chaos_rounds(["release", {"action": "reclaim", "notice": 60, "spot_outage": True},
                                    {"action": "reclaim"}])
    assert [(r["number"], r["action"], r["spot_outage"], r["spot_back"]) for r in rounds] == [
        (1, "release", False, False), (2, "reclaim", True, False), (2, "spot_back", False, True),
        (3, "reclaim", False, False)]
    assert [r["cause"] for r in rounds] == [
        "release", "reclaim (notice 60 s), no spot capacity", "spot capacity back, pay-as-you-go replaced by spot",
        "reclaim (notice 120 s)"]
    assert training.chaos_rounds([]) == []


def test_the_playbooks_read_the_agents_log_and_marker_names():
    agent = training.load_agent()
    storage = yaml.safe_load((ROOT / "group_vars" / "all" / "storage.yml").read_text())
    assert storage["training_complete_marker"] == agent.COMPLETE_MARKER
    assert storage["training_log_file"] == str(agent.LOG_DIR / agent.TRAIN_LOG)
    assert storage["training_events_dir"] == agent.EVENTS_DIR
    assert training.train_log_grep("/x/train.log")[-1] == "/x/train.log"


def test_module_utils_training_state_uses_the_agents_names():
    # plugins/module_utils/training_state.py repeats them: the agent cannot import it on an instance.
    from ansible_collections.spotfirst.finetune.plugins.module_utils import training_state
    agent = training.load_agent()
    for name in ("STEP_KEY", "MANIFEST_NAME", "COMPLETE_MARKER", "EVENTS_DIR", "TRAINER_STATE"):
        assert getattr(training_state, name) == getattr(agent, name), name
    assert training_state.STEP_RE.pattern == agent.STEP_RE.pattern


def events(*steps: tuple[int, float]) -> str:
    return "".join(f'{{"time": {when}, "event": "step", "step": {step}}}\n' for step, when in steps)


def test_the_chaos_report_gives_each_handovers_gap_and_whether_two_trainers_ran_at_once():
    logs = {"i-a": events((1, 10.0), (2, 11.0), (3, 12.0)), "i-b": events((3, 15.5), (4, 16.0)),
            "i-c": events((5, 15.9))}  # i-c started before i-b's last step
    interruptions = [{"released_instance": "i-a", "replacement": "i-b"},
                     {"released_instance": "i-b", "replacement": "i-c"}]
    records = training.with_handovers(interruptions, logs)
    assert records[0] == {**interruptions[0], "last_step_released": 3, "first_step_replacement": 3,
                          "training_gap_seconds": 3.5, "trained_at_once": False, "overlap_seconds": None}
    # With the replacement's agent start: it ran 1.5 s while i-a still trained.
    started = training.handover({**logs, "i-b": '{"time": 10.5, "event": "start"}\n' + logs["i-b"]}, "i-a", "i-b")
    assert started["overlap_seconds"] == 1.5
    assert records[1]["trained_at_once"] is True and records[1]["training_gap_seconds"] == -0.1
    assert training.trainers_at_once(logs) == [["i-b", "i-c"]]
    saves = "".join(f'{{"time": {step}, "event": "save", "step": {step}}}\n' for step in (3, 6, 8, 9, 12))
    assert training.save_steps({"i-a": saves, "i-b": events((1, 1.0))}) == 3
    assert training.save_steps({"i-b": events((1, 1.0))}) is None
    report = {"training": {"complete": True, "step": 5, "max_steps": 5, "newest_checkpoint": 5},
              "interruptions": [{**record, "cause": "release", "released_charge": "spot", "released_zone": "z",
                                 "replacement_charge": "spot", "replacement_zone": "z", "resumed_from_path": "c-2",
                                 "first_step": 3, "steps_lost": 1, "seconds_to_first_step": 40.0}
                                for record in records],
              "two_trainers_at_once": training.trainers_at_once(logs), "instances": []}
    lines = training.chaos_summary(report)
    assert "1 steps lost, training gap 3.5 s, first resumed step 40.0 s after the interruption" in lines[1]
    assert lines[2].endswith("after the interruption") and "the two trained at once" in lines[2]
    assert "Two trainers at once: i-b and i-c" in lines
