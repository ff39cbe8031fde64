"""bench/fault_matrix.py's plan of faults and its table per kind, from chaos reports."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("fault_matrix", ROOT / "bench" / "fault_matrix.py")
matrix = importlib.util.module_from_spec(spec)
spec.loader.exec_module(matrix)


def test_the_plan_has_every_kind_as_often_as_asked_dealt_out_to_the_trainings():
    first, second = matrix.plan(per_kind=5, trainings=2, seed=1)
    assert (len(first), len(second)) == (25, 25)
    kinds = [a["kind"] for a in first + second]
    assert {kind: kinds.count(kind) for kind in matrix.KINDS} == dict.fromkeys(matrix.KINDS, 5)
    assert matrix.plan(5, 2, 1) == [first, second] and matrix.plan(5, 2, 2) != [first, second]


def test_the_table_counts_per_kind_what_the_reports_say():
    adapter = {"w": ("F32", [1], b"\0\0\0\0")}
    actions = [{"action": "release", "kind": "release"}, {"action": "release", "kind": "release"},
               {"action": "reclaim", "notice": 0, "spot_outage": True, "kind": "reclaim, no spot"},
               {"action": "net_cut", "kind": "cut"}]
    report = {"interruptions": [
        {"kind": "release", "steps_lost": 2, "seconds_to_first_step": 20.0, "resumed_checkpoint_complete": True},
        {"kind": "release", "steps_lost": 3, "seconds_to_first_step": 24.0, "resumed_checkpoint_complete": False},
        {"kind": "reclaim, no spot", "steps_lost": 1, "seconds_to_first_step": 30.0},
        {"kind": "spot_back", "steps_lost": 0, "seconds_to_first_step": 40.0}],
        "faults": [{"kind": "cut", "steps_lost": 0, "seconds_to_first_step": 1.0,
                    "seconds_to_first_step_after_end": 16.0}]}
    trainings = [{"training": 1, "actions": actions, "report": report, "complete": True, "adapter": adapter,
                  "chaos_rc": 0,
                  "left_behind": {}, "faults_left": []}]
    table = {row["kind"]: row for row in matrix.rows(trainings, adapter)}
    release = table["release"]
    assert (release["planned"], release["injected"], release["completed"], release["identical"],
            release["invalid_resumes"], release["steps_lost"], release["seconds_to_first_step"]) == (
        2, 2, 1, 1, 1, [2, 3], [20.0, 24.0])
    assert table[matrix.SPOT_BACK]["seconds_to_first_step"] == [40.0]
    assert table["cut"]["seconds_to_first_step"] == [16.0]  # from the fault to the first step after its end
    assert all(row["left_behind"] == [] and row["chaos_passed"] == 1 for row in table.values())
    other = {"w": ("F32", [1], b"\0\0\0\1")}
    assert matrix.rows(trainings, other)[0]["identical"] == 0
    left = [{**trainings[0], "left_behind": {"buckets": ["b"]}}]
    assert matrix.rows(left, adapter)[0]["left_behind"] == ["training 1: {'buckets': ['b']}"]


def test_the_table_of_an_earlier_run_prints_one_line_per_kind(tmp_path: Path):
    table = [{"kind": "release", "planned": 5, "injected": 5, "trainings": 2, "chaos_passed": 1, "completed": 2,
              "identical": 2,
              "invalid_resumes": 0, "steps_lost": [1, 3], "seconds_to_first_step": [19.5, 22.0], "left_behind": []}]
    path = tmp_path / "matrix.json"
    path.write_text(json.dumps({"table": table}))
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "fault_matrix.py"), "--table", str(path)],
                         capture_output=True, text=True, check=True)
    line = next(line for line in run.stdout.splitlines() if line.startswith("release"))
    assert line.split() == ["release", "5", "2", "1", "2", "2", "0", "2", "/", "3", "20.75", "/", "22", "nothing"]
    assert "5 faults injected and recorded, of 5 planned" in run.stdout
