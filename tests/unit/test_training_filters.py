"""The filters that read where training stands (the collection's plugins/filter/training.py) and chaos.yml's
rounds and report (plugins/filter/chaos.py), and the names the playbooks read of the agent's (the
training_protocol lookup)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from ansible_collections.spotfirst.finetune.plugins.filter import chaos, training
from ansible_collections.spotfirst.finetune.plugins.lookup.training_protocol import value_of
from ansible_collections.spotfirst.finetune.plugins.module_utils import training_protocol as protocol
from ansible_collections.spotfirst.finetune.plugins.module_utils.timeline import log_entries
from ansible_collections.spotfirst.finetune.plugins.module_utils.training_state import checkpoint_steps

ROOT = Path(__file__).resolve().parents[2]


def test_checkpoint_steps_are_the_complete_checkpoints_in_step_order():
    keys = ["output/", "output/checkpoint-12/trainer_state.json", "output/checkpoint-3/trainer_state.json",
            "output/checkpoint-15/adapter_model.safetensors", "output/checkpoint-9/trainer_state.json",
            "other/checkpoint-30/trainer_state.json", "output/checkpoint-6/trainer_stateXjson"]
    assert checkpoint_steps(keys, "output/") == [3, 9, 12]
    assert checkpoint_steps([], "output/") == []


def test_train_log_resume_reads_the_checkpoint_and_the_first_step():
    log = "\n".join([
        f"2026-11-28 10:36:52,923 train-agent INFO {protocol.RESUME_MARK}: /mnt/oss-data/output/checkpoint-6 "
        "(global step 6)",
        "{'loss': '7.1', 'global_step/max_steps': '7/150', 'elapsed_time': '1s'}",
        "{'loss': '7.0', 'global_step/max_steps': '8/150', 'elapsed_time': '2s'}",
    ])
    resume = training.train_log_resume(log)
    assert resume["fresh"] is False and resume["resumed_from"] == 6 and resume["first_step"] == 7
    assert resume["checkpoint"].endswith("checkpoint-6") and resume["max_steps"] == 150
    fresh = training.train_log_resume(f"x train-agent INFO {protocol.FRESH_MARK}: starting a new training")
    assert fresh["fresh"] is True and fresh["first_step"] is None


def test_steps_lost_counts_the_steps_past_the_checkpoint_resumed_from():
    # Released at step 8 (two steps past checkpoint-6); the replacement resumes at 7.
    assert training.steps_lost([1, 2, 3, 4, 5, 6, 7, 8, 7, 8, 9], 6, 6) == 2
    assert training.steps_lost([1, 2, 3, 4, 5, 6, 7], 6, 6) == 0
    assert training.steps_lost([1, 2, 3, 4, 5, 6], 6, 6) is None


def test_chaos_rounds_fill_in_the_settings_and_follow_a_spot_outage_with_spot_coming_back():
    rounds = chaos.chaos_rounds(["release", {"action": "reclaim", "notice": 60, "spot_outage": True},
                                    {"action": "reclaim"}])
    assert [(r["number"], r["action"], r["spot_outage"], r["spot_back"]) for r in rounds] == [
        (1, "release", False, False), (2, "reclaim", True, False), (2, "spot_back", False, True),
        (3, "reclaim", False, False)]
    assert [r["cause"] for r in rounds] == [
        "release", "reclaim (notice 60 s), no spot capacity", "spot capacity back, pay-as-you-go replaced by spot",
        "reclaim (notice 120 s)"]
    assert chaos.chaos_rounds([]) == []
    (kill,) = chaos.chaos_rounds(["kill_upload"])
    assert (kill["cause"], kill["upload_file"]) == ("killed while uploading a checkpoint (optimizer.pt)",
                                                    "optimizer.pt")
    assert (kill["interrupt"], kill["kills"]) == ("kill", True)
    assert kill["faults"] == [["oss", "--kill", "--method", "PUT", "--match", "*/checkpoint-*/optimizer.pt"]]


def test_chaos_rounds_say_how_each_fault_is_injected():
    boot, mount, api, oss, cut, daemon, unknown = chaos.chaos_rounds(
        ["kill_boot", "kill_mount", "throttle_api", {"action": "oss_errors", "rate": 0.3}, "net_cut",
         {"action": "daemon_kill", "seconds": 5}, "reboot"])
    assert [(r["interrupt"], r["kills"]) for r in (boot, mount, api, oss, cut, daemon)] == [
        ("release", True), ("release", True), ("release", False), ("release", False), ("none", False),
        ("none", False)]
    assert boot["faults"] == [["meta", "--kill", "--new"]] and mount["faults"] == [["oss", "--kill", "--new"]]
    assert api["faults"] == [["api", "--rate", "0.2", "--code", "Throttling.User"]]
    assert oss["faults"] == [["oss", "--rate", "0.15", "--code", "SlowDown", "--match", "*"],
                             ["oss", "--rate", "0.15", "--code", "InternalError", "--match", "*"]]
    (output,) = chaos.chaos_rounds([{"action": "oss_errors", "match": "*/output/*"}])
    assert output["cause"] == ("release while OSS fails 20% of the requests on */output/* (503 SlowDown, "
                               "500 InternalError)")
    assert oss["cause"] == "release while OSS fails 30% of the requests (503 SlowDown, 500 InternalError)"
    assert (cut["cause"], cut["faults"]) == ("the training instance cut off the network for 20 s", [])
    assert daemon["cause"] == "localcloud killed (SIGKILL) and started again after 5 s"
    assert unknown["interrupt"] == ""  # chaos.yml refuses it before anything happens


def test_a_fault_that_takes_nothing_away_is_measured_from_the_trainers_own_steps():
    log = "\n".join(json.dumps({"event": "step", "step": step, "time": at})
                     for step, at in [(5, 100.0), (6, 101.0), (7, 104.0), (8, 131.0), (9, 132.0)])
    (cut,) = chaos.with_fault_effects([{"instance": "i-1", "at": 102.0, "until": 130.0}], {"i-1": log})
    assert (cut["steps_during"], cut["seconds_to_first_step"], cut["seconds_to_first_step_after_end"],
            cut["steps_lost"]) == (1, 2.0, 29.0, 0)
    restarted = log + "\n" + json.dumps({"event": "step", "step": 7, "time": 140.0})
    (again,) = chaos.with_fault_effects([{"instance": "i-1", "at": 102.0, "until": 130.0}], {"i-1": restarted})
    assert again["steps_lost"] == 3  # 9, then 7: steps 7, 8 and 9 trained again
    (unseen,) = chaos.with_fault_effects([{"instance": "i-2", "at": 102.0, "until": 130.0}], {"i-1": log})
    assert unseen["seconds_to_first_step"] is None and unseen["steps_lost"] is None


def test_the_playbooks_read_the_agents_names_through_the_protocol_lookup(tmp_path: Path):
    """group_vars/all/storage.yml names what the agent writes through the training_protocol lookup, which
    gives the protocol's values (no copy of them in the playbooks)."""
    assert value_of("COMPLETE_MARKER") == protocol.COMPLETE_MARKER
    assert value_of("EVENTS_DIR") == protocol.EVENTS_DIR
    assert value_of("TRAIN_LOG_PATH") == f"{protocol.LOG_DIR}/{protocol.TRAIN_LOG}"
    names = ("training_complete_marker", "training_log_file", "training_events_dir")
    storage = yaml.safe_load((ROOT / "group_vars" / "all" / "storage.yml").read_text())
    assert all("spotfirst.finetune.training_protocol" in storage[name] for name in names)
    (tmp_path / "group_vars").symlink_to(ROOT / "group_vars")
    out = tmp_path / "names.json"
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "Write the names", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "Write them", "ansible.builtin.copy": {
            "content": "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}", "dest": str(out),
            "mode": "0644"}}]}]))
    run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "play.yml",
                          "-e", json.dumps({"ansible_python_interpreter": sys.executable})],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert json.loads(out.read_text()) == {"training_complete_marker": protocol.COMPLETE_MARKER,
                                           "training_log_file": value_of("TRAIN_LOG_PATH"),
                                           "training_events_dir": protocol.EVENTS_DIR}
    assert training.train_log_grep("/x/train.log")[-1] == "/x/train.log"


def events(*steps: tuple[int, float]) -> str:
    return "".join(f'{{"time": {when}, "event": "step", "step": {step}}}\n' for step, when in steps)


def test_the_chaos_report_gives_each_handovers_gap_and_whether_two_trainers_ran_at_once():
    logs = {"i-a": events((1, 10.0), (2, 11.0), (3, 12.0)), "i-b": events((3, 15.5), (4, 16.0)),
            "i-c": events((5, 15.9))}  # i-c started before i-b's last step
    interruptions = [{"released_instance": "i-a", "replacement": "i-b", "at": 12.5},
                     {"released_instance": "i-b", "replacement": "i-c", "at": 15.5}]
    records = chaos.with_handovers(interruptions, logs)
    assert records[0] == {**interruptions[0], "last_step_released": 3, "first_step_replacement": 3,
                          "training_gap_seconds": 3.5, "trained_at_once": False, "overlap_seconds": None,
                          "resume_breakdown": {"milestones": [], "validation_seconds": None}}
    # With the replacement's agent start: it ran 1.5 s while i-a still trained.
    started = chaos.handover({**logs, "i-b": '{"time": 10.5, "event": "start"}\n' + logs["i-b"]}, "i-a", "i-b")
    assert started["overlap_seconds"] == 1.5
    assert records[1]["trained_at_once"] is True and records[1]["training_gap_seconds"] == -0.1
    assert chaos.trainers_at_once(logs) == [["i-b", "i-c"]]
    saves = "".join(f'{{"time": {step}, "event": "save", "step": {step}}}\n' for step in (3, 6, 8, 9, 12))
    assert chaos.save_steps({"i-a": saves, "i-b": events((1, 1.0))}) == 3
    assert chaos.save_steps({"i-b": events((1, 1.0))}) is None
    report = {"training": {"complete": True, "step": 5, "max_steps": 5, "newest_checkpoint": 5},
              "interruptions": [{**record, "cause": "release", "released_charge": "spot", "released_zone": "z",
                                 "replacement_charge": "spot", "replacement_zone": "z", "resumed_from_path": "c-2",
                                 "first_step": 3, "steps_lost": 1, "seconds_to_first_step": 40.0}
                                for record in records],
              "two_trainers_at_once": chaos.trainers_at_once(logs), "instances": []}
    lines = chaos.chaos_summary(report)
    assert "1 steps lost, training gap 3.5 s, first resumed step 40.0 s after the interruption" in lines[1]
    assert lines[2].endswith("after the interruption") and "the two trained at once" in lines[2]
    assert "Two trainers at once: i-b and i-c" in lines
    # A run that failed (a round's check, the wait for the end) says so first, then what happened until then.
    failed = chaos.chaos_summary({**report, "failed": "Check the resume on the replacement: no step after 900 s"})
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
    breakdown = chaos.resume_breakdown(interruption, {"i-b": log}, ledger)
    assert [(m["milestone"], m["seconds"], m["segment"]) for m in breakdown["milestones"]] == [
        ("launched", 1.0, 1.0), ("booted", 2.0, 1.0), ("running", 3.0, 1.0), ("mounted", 5.0, 2.0),
        ("agent_started", 6.0, 1.0), ("swift_started", 7.5, 1.5), ("loaded", 30.0, 22.5),
        ("checkpoint_chosen", 30.5, 0.5), ("first_step", 33.0, 2.5)]
    assert breakdown["validation_seconds"] == 0.4
    # A real account (no ledger) and an agent that has not started yet: what the records show, no more.
    assert [m["milestone"] for m in chaos.resume_breakdown(interruption, {"i-b": log})["milestones"]][:2] == [
        "booted", "mounted"]
    assert chaos.resume_breakdown(interruption, {}, ledger)["milestones"][-1]["milestone"] == "running"
    assert chaos.resume_breakdown(interruption, {}) == {"milestones": [], "validation_seconds": None}
    record = chaos.with_handovers([interruption], {"i-b": log}, ledger)[0]
    assert record["resume_breakdown"] == breakdown and record["first_step_replacement"] == 10


def chaos_run() -> dict:
    """What chaos.yml holds at its end after one release (i-a, spot, to i-b, pay-as-you-go) and a network cut
    of i-b, on localcloud at x60 (virtual 1000 was real 0), as its tasks give it."""
    def log(*entries: dict) -> str:
        return "".join(json.dumps(entry) + "\n" for entry in entries)

    released = log({"time": 10.0, "event": "start"}, *({"time": 10.0 + step, "event": "step", "step": step}
                                                       for step in range(1, 12)),
                   *({"time": 10.5 + step, "event": "save", "step": step} for step in (3, 6, 9)))
    replacement = log({"time": 106.0, "event": "start", "booted": 102.0, "mounted": 105.0},
                      {"time": 107.5, "event": "swift", "pid": 42}, {"time": 130.0, "event": "loaded"},
                      {"time": 130.5, "event": "resume", "step": 9, "validation_seconds": 0.4},
                      *({"time": 123.0 + step, "event": "step", "step": step} for step in range(10, 21)),
                      {"time": 137.0, "event": "save", "step": 12}, {"time": 143.0, "event": "save", "step": 15},
                      {"time": 144.5, "event": "complete"})
    ledger = {"time_scale": 60, "clock_anchor": {"real": 0.0, "virtual": 1000.0}, "now": 1000 + 150 * 60,
              "total": 20.25, "by_charge_type": {"pay-as-you-go": {"hours": 1.5, "cost": 15.0},
                                                "spot": {"hours": 1.5, "cost": 5.25}},
              "entries": [
                  {"InstanceId": "i-t", "ZoneId": "cn-hangzhou-j", "ChargeType": "pay-as-you-go", "PricePerHour": 10,
                   "ScalingGroupId": "", "Start": 0, "End": 1000, "Hours": 0.5, "Cost": 5.0},
                  {"InstanceId": "i-a", "ZoneId": "cn-hangzhou-j", "ChargeType": "spot", "PricePerHour": 3.5,
                   "ScalingGroupId": "asg-1", "Start": 1000 + 5 * 60, "RunningAt": 1000 + 6 * 60,
                   "End": 1000 + 100 * 60, "Hours": 1.5, "Cost": 5.25},
                  {"InstanceId": "i-b", "ZoneId": "cn-hangzhou-k", "ChargeType": "pay-as-you-go", "PricePerHour": 10,
                   "ScalingGroupId": "asg-1", "Start": 1000 + 101 * 60, "RunningAt": 1000 + 103 * 60,
                   "End": 1000 + 150 * 60, "Hours": 1.0, "Cost": 10.0}]}
    interruption = {"cause": "release", "action": "release", "kind": "release", "notice": None,
                    "released_instance": "i-a", "released_zone": "cn-hangzhou-j", "released_charge": "spot",
                    "at": 100.0, "replacement": "i-b", "replacement_zone": "cn-hangzhou-k",
                    "replacement_charge": "pay-as-you-go", "checkpoint_at_release": 9, "step_at_release": 11,
                    "pause_after_checkpoint": 1.5, "killed_during": None, "killed_instance": None,
                    "faults_injected": 0, "resumed_from": 9, "resumed_from_path": "/mnt/oss-data/output/checkpoint-9",
                    "first_step": 10, "seconds_to_first_step": 33.0, "steps_lost": 2,
                    "resumed_checkpoint_complete": True}
    fault = {"cause": "the training instance cut off the network for 20 s", "instance": "i-b", "at": 138.5,
             "until": 140.5, "step_at_fault": 15}
    return {
        "interruptions": [interruption], "faults": [fault],
        "first_instance": {"instance_id": "i-a", "zone_id": "cn-hangzhou-j", "charge": "spot",
                           "lifecycle_state": "InService", "status": "Running"},
        # alicloud_training_info with event_logs: true gives each log parsed.
        "training": {"state": "complete", "complete": True, "step": 20, "max_steps": 20, "newest_checkpoint": 20,
                     "event_logs": {"i-a": log_entries(released), "i-b": log_entries(replacement)}},
        "texts": {"i-a": released, "i-b": replacement},
        "group": {"scaling_group": {"scaling_group_id": "asg-1", "desired_capacity": 0}, "instances": [],
                  "activities": [{"description": "Remove \"1\" ECS instance(s)"},
                                 {"description": "Add \"1\" ECS instance(s)"}]},
        "bill": ledger,
        "reported": [{"result": {"status": "complete", "global_step": 20, "max_steps": 20,
                                 "final_checkpoint": "/mnt/oss-data/output/checkpoint-20"}}],
        "prices": {"spot": 3.5, "pay_as_you_go": 10},
    }


def report_of(run: dict, bill: dict | None, failed: str | None = None) -> dict:
    timeline = chaos.chaos_timeline(run["interruptions"], run["first_instance"], run["training"]["event_logs"], bill,
                                    run["group"], run["prices"], 200.0)
    return chaos.chaos_report(run["interruptions"], run["faults"], run["first_instance"], run["training"],
                              run["group"], bill, run["reported"], run["prices"], timeline, "/x/.cache/timeline.png",
                              started_at=50.0, now=160.04, failed=failed)


def test_the_chaos_report_is_one_filter_over_the_rounds_the_event_logs_the_group_and_the_bill():
    run = chaos_run()
    report = report_of(run, run["bill"])
    # The keys chaos.yml has always written (tests/e2e/test_site_chaos.py and bench/chaos_bench.py read them).
    assert sorted(report) == ["activities", "bill", "charge_types_used", "cost", "ending", "failed", "faults",
                              "instances", "interruptions", "prices", "save_steps", "seconds_total", "timeline",
                              "training", "two_trainers_at_once"]
    (item,) = report["interruptions"]
    assert {key: item[key] for key in ("last_step_released", "first_step_replacement", "training_gap_seconds",
                                       "trained_at_once", "overlap_seconds", "steps_lost")} == {
        "last_step_released": 11, "first_step_replacement": 10, "training_gap_seconds": 112.0,
        "trained_at_once": False, "overlap_seconds": 0.0, "steps_lost": 2}
    assert [(m["milestone"], m["seconds"]) for m in item["resume_breakdown"]["milestones"]] == [
        ("launched", 1.0), ("booted", 2.0), ("running", 3.0), ("mounted", 5.0), ("agent_started", 6.0),
        ("swift_started", 7.5), ("loaded", 30.0), ("checkpoint_chosen", 30.5), ("first_step", 33.0)]
    (cut,) = report["faults"]
    assert (cut["steps_during"], cut["seconds_to_first_step_after_end"], cut["steps_lost"]) == (2, 2.5, 0)
    assert report["two_trainers_at_once"] == [] and report["save_steps"] == 3
    assert report["instances"] == [{"instance_id": "i-a", "zone": "cn-hangzhou-j", "charge": "spot"},
                                   {"instance_id": "i-b", "zone": "cn-hangzhou-k", "charge": "pay-as-you-go"}]
    assert report["charge_types_used"] == ["spot", "pay-as-you-go"]
    assert report["training"] == {"complete": True, "step": 20, "max_steps": 20, "newest_checkpoint": 20}
    # The training (the group's two instances) apart from the template; 2.5 h all pay-as-you-go would be 25.
    training_cost = report["cost"]["training"]
    assert (training_cost["instances"], training_cost["hours"], training_cost["cost"]) == (2, 2.5, 15.25)
    assert training_cost["priced"]["cost"]["all_pay_as_you_go"] == 25.0 and report["cost"]["one_off"]["cost"] == 5.0
    assert report["bill"] is run["bill"] and report["prices"] == {"spot": 3.5, "pay_as_you_go": 10}
    assert report["activities"] == ["Remove \"1\" ECS instance(s)", "Add \"1\" ECS instance(s)"]
    assert report["ending"] == {"events": [run["reported"][0]["result"]], "desired_capacity": 0, "instances": 0}
    assert report["seconds_total"] == 110.0 and report["failed"] is None
    assert report["timeline"] == {"path": "/x/.cache/timeline.png", "clock": "virtual", "bars": ["i-a", "i-b"],
                                  "interruptions": ["release"], "steps": 22}
    json.dumps(report)  # written with to_nice_json
    # The event logs as their texts give the same report.
    texts = {**run, "training": {**run["training"], "event_logs": run["texts"]}}
    assert report_of(texts, run["bill"]) == report


def test_the_chaos_reports_lines_and_a_real_account_without_a_ledger():
    run = chaos_run()
    lines = chaos.chaos_summary(report_of(run, run["bill"]))
    assert lines[0] == "Training complete; newest checkpoint checkpoint-20."
    assert lines[1].startswith("1. release: i-a (spot, cn-hangzhou-j) -> i-b (pay-as-you-go, cn-hangzhou-k); "
                               "resumed from /mnt/oss-data/output/checkpoint-9 at step 10, 2 steps lost")
    assert "Two trainers at once: never" in lines
    assert "Cost: 20.25 RMB (pay-as-you-go 1.500 h 15.00 RMB; spot 1.500 h 5.25 RMB; hours on localcloud's " \
           "virtual clock)" in lines
    assert any(line.startswith("  the same 2.500 h all pay-as-you-go 25.00") for line in lines)
    assert lines[-1] == "Timeline: /x/.cache/timeline.png"
    # A real account: no bill, no cost; the bars from the event logs (first to last entry) on the wall clock.
    real = report_of(run, None, failed="Wait until training is complete: timed out")
    assert (real["bill"], real["cost"]) == ({}, {}) and real["timeline"]["clock"] == "wall"
    assert real["timeline"]["bars"] == ["i-a", "i-b"] and real["failed"].startswith("Wait until")
    assert chaos.chaos_summary(real)[0].startswith("chaos.yml failed (Wait until training is complete")
