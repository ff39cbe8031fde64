"""The playbooks' filters that read where training stands (playbooks/filter_plugins/training.py)."""

from __future__ import annotations

import importlib.util
import json
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
    (kill,) = training.chaos_rounds(["kill_upload"])
    assert (kill["cause"], kill["upload_file"]) == ("killed while uploading a checkpoint (optimizer.pt)",
                                                    "optimizer.pt")
    assert (kill["interrupt"], kill["kills"]) == ("kill", True)
    assert kill["faults"] == [["oss", "--kill", "--method", "PUT", "--match", "*/checkpoint-*/optimizer.pt"]]


def test_chaos_rounds_say_how_each_fault_is_injected():
    boot, mount, api, oss, cut, daemon, unknown = training.chaos_rounds(
        ["kill_boot", "kill_mount", "throttle_api", {"action": "oss_errors", "rate": 0.3}, "net_cut",
         {"action": "daemon_kill", "seconds": 5}, "reboot"])
    assert [(r["interrupt"], r["kills"]) for r in (boot, mount, api, oss, cut, daemon)] == [
        ("release", True), ("release", True), ("release", False), ("release", False), ("none", False),
        ("none", False)]
    assert boot["faults"] == [["meta", "--kill", "--new"]] and mount["faults"] == [["oss", "--kill", "--new"]]
    assert api["faults"] == [["api", "--rate", "0.2", "--code", "Throttling.User"]]
    assert oss["faults"] == [["oss", "--rate", "0.15", "--code", "SlowDown", "--match", "*"],
                             ["oss", "--rate", "0.15", "--code", "InternalError", "--match", "*"]]
    (output,) = training.chaos_rounds([{"action": "oss_errors", "match": "*/output/*"}])
    assert output["cause"] == ("release while OSS fails 20% of the requests on */output/* (503 SlowDown, "
                               "500 InternalError)")
    assert oss["cause"] == "release while OSS fails 30% of the requests (503 SlowDown, 500 InternalError)"
    assert (cut["cause"], cut["faults"]) == ("the training instance cut off the network for 20 s", [])
    assert daemon["cause"] == "localcloud killed (SIGKILL) and started again after 5 s"
    assert unknown["interrupt"] == ""  # chaos.yml refuses it before anything happens


def test_a_fault_that_takes_nothing_away_is_measured_from_the_trainers_own_steps():
    log = "\n".join(json.dumps({"event": "step", "step": step, "time": at})
                     for step, at in [(5, 100.0), (6, 101.0), (7, 104.0), (8, 131.0), (9, 132.0)])
    (cut,) = training.with_fault_effects([{"instance": "i-1", "at": 102.0, "until": 130.0}], {"i-1": log})
    assert (cut["steps_during"], cut["seconds_to_first_step"], cut["seconds_to_first_step_after_end"],
            cut["steps_lost"]) == (1, 2.0, 29.0, 0)
    restarted = log + "\n" + json.dumps({"event": "step", "step": 7, "time": 140.0})
    (again,) = training.with_fault_effects([{"instance": "i-1", "at": 102.0, "until": 130.0}], {"i-1": restarted})
    assert again["steps_lost"] == 3  # 9, then 7: steps 7, 8 and 9 trained again
    (unseen,) = training.with_fault_effects([{"instance": "i-2", "at": 102.0, "until": 130.0}], {"i-1": log})
    assert unseen["seconds_to_first_step"] is None and unseen["steps_lost"] is None


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
    interruptions = [{"released_instance": "i-a", "replacement": "i-b", "at": 12.5},
                     {"released_instance": "i-b", "replacement": "i-c", "at": 15.5}]
    records = training.with_handovers(interruptions, logs)
    assert records[0] == {**interruptions[0], "last_step_released": 3, "first_step_replacement": 3,
                          "training_gap_seconds": 3.5, "trained_at_once": False, "overlap_seconds": None,
                          "resume_breakdown": {"milestones": [], "validation_seconds": None}}
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
    # A run that failed (a round's check, the wait for the end) says so first, then what happened until then.
    failed = training.chaos_summary({**report, "failed": "Check the resume on the replacement: no step after 900 s"})
    assert failed[0] == ("chaos.yml failed (Check the resume on the replacement: no step after 900 s); "
                         "what happened until then:")
    assert failed[1:] == lines


def test_the_resume_breakdown_places_each_milestone_from_the_components_own_clocks():
    """A release at t=100: the ledger (virtual clock, scale 60, anchored at real 0 = virtual 1000) launched
    the replacement at +1 s and saw it Running at +3 s; its systemd booted at +2 s and mounted at +5 s;
    the agent's warm start chose the checkpoint after the trainer loaded."""
    log = "".join(json.dumps(line) + "\n" for line in [
        {"time": 50.0, "event": "start"},  # an earlier start (before the interruption) is not this resume's
        {"time": 106.0, "event": "start", "booted": 102.0, "mounted": 105.0},
        {"time": 107.5, "event": "swift", "pid": 42},
        {"time": 130.0, "event": "loaded"},
        {"time": 130.5, "event": "resume", "step": 9, "validation_seconds": 0.4},
        {"time": 133.0, "event": "step", "step": 10},
        {"time": 134.0, "event": "step", "step": 11},
    ])
    ledger = {"time_scale": 60, "clock_anchor": {"real": 0.0, "virtual": 1000.0},
              "entries": [{"InstanceId": "i-b", "Start": 1000 + 101 * 60, "RunningAt": 1000 + 103 * 60},
                          {"InstanceId": "i-a", "Start": 1000.0, "RunningAt": 1060.0}]}
    interruption = {"at": 100.0, "released_instance": "i-a", "replacement": "i-b"}
    breakdown = training.resume_breakdown(interruption, {"i-b": log}, ledger)
    assert [(m["milestone"], m["seconds"], m["segment"]) for m in breakdown["milestones"]] == [
        ("launched", 1.0, 1.0), ("booted", 2.0, 1.0), ("running", 3.0, 1.0), ("mounted", 5.0, 2.0),
        ("agent_started", 6.0, 1.0), ("swift_started", 7.5, 1.5), ("loaded", 30.0, 22.5),
        ("checkpoint_chosen", 30.5, 0.5), ("first_step", 33.0, 2.5)]
    assert breakdown["validation_seconds"] == 0.4
    # A real account (no ledger) and an agent that has not started yet: what the records show, no more.
    assert [m["milestone"] for m in training.resume_breakdown(interruption, {"i-b": log})["milestones"]][:2] == [
        "booted", "mounted"]
    assert training.resume_breakdown(interruption, {}, ledger)["milestones"][-1]["milestone"] == "running"
    assert training.resume_breakdown(interruption, {}) == {"milestones": [], "validation_seconds": None}
    record = training.with_handovers([interruption], {"i-b": log}, ledger)[0]
    assert record["resume_breakdown"] == breakdown and record["first_step_replacement"] == 10
