"""bench/chaos_bench.py's figures and summary table from a chaos report."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.spotfirst.finetune.plugins.module_utils.cost_model import cost_report

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("chaos_bench", ROOT / "bench" / "chaos_bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def interruption(cause: str, lost: int, gap: float, overlap: float | None, first: float) -> dict:
    return {"cause": cause, "steps_lost": lost, "training_gap_seconds": gap, "trained_at_once": False,
            "overlap_seconds": overlap, "seconds_to_first_step": first, "pause_after_checkpoint": 1.0}


def entry(instance: str, charge: str, hours: float, price: float, group: str = "asg-1") -> dict:
    return {"InstanceId": instance, "ChargeType": charge, "ScalingGroupId": group, "Hours": hours,
            "Cost": hours * price}


def report() -> dict:
    entries = [entry("i-t", "pay-as-you-go", 1, 10, group=""), entry("i-a", "spot", 8, 3.5),
               entry("i-b", "pay-as-you-go", 4, 10)]
    return {
        "interruptions": [interruption("release", 2, 44.0, None, 45.7),
                          interruption("reclaim (notice 4800 s, no spot capacity)", 0, 3.0, 60.0, 50.0)],
        "save_steps": 3, "two_trainers_at_once": [], "training": {"complete": True},
        "prices": {"spot": 3.5, "pay_as_you_go": 10},
        "bill": {"entries": entries, "total": 78.0},
        "cost": cost_report(entries, 3.5, 10),
        "timeline": {"path": "/tmp/timeline.png"},
    }


def test_figures_and_the_summary_table(tmp_path, capsys):
    figures = bench.figures(report())
    assert figures["release_steps_lost"] == [2] and figures["handover_steps_lost"] == [0]
    assert figures["median_seconds_to_first_resumed_step"] == 47.85
    assert figures["cost"]["training"]["cost"] == 68 and figures["cost"]["one_off"]["cost"] == 10
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report()))
    assert bench.main(["--report", str(path)]) == 0
    table = capsys.readouterr().out
    assert "2 interruptions (a periodic save every 3 steps), training complete" in table
    assert "  1  release" in table and "44.0 s" in table
    assert "the same hours all pay-as-you-go" in table and "120.00" in table
    assert "saving of the training against all pay-as-you-go: 43.33 % (all spot would save 65.0 %)" in table
    assert "one-off (template and bake)" in table and "Timeline: /tmp/timeline.png" in table


def test_a_report_from_before_the_split_is_split_from_its_entries():
    old = report()
    del old["cost"], old["timeline"]
    figures = bench.figures(old)
    assert figures["cost"]["training"]["hours"] == 12 and figures["timeline"] is None


def milestones(*pairs: tuple[str, float]) -> dict:
    previous, rows = 0.0, []
    for name, seconds in pairs:
        rows.append({"milestone": name, "seconds": seconds, "segment": round(seconds - previous, 2)})
        previous = seconds
    return {"milestones": rows, "validation_seconds": 0.2}


def test_the_segments_of_the_resumes_are_printed_as_medians(tmp_path):
    data = report()
    data["interruptions"][0]["resume_breakdown"] = milestones(("launched", 1.0), ("agent_started", 9.0),
                                                              ("first_step", 30.0))
    data["interruptions"].insert(1, {**interruption("release", 1, 20.0, None, 21.0),
                                     "resume_breakdown": milestones(("launched", 3.0), ("agent_started", 7.0),
                                                                    ("first_step", 20.0))})
    figures = bench.figures(data)
    rows = {row["milestone"]: row for row in figures["resume_segments"]["releases"]}
    assert (rows["launched"]["median_seconds"], rows["agent_started"]["median_segment"]) == (2.0, 6.0)
    assert rows["first_step"]["median_seconds"] == 25.0 and rows["first_step"]["count"] == 2
    assert figures["resume_segments"]["handovers"] == [] and figures["validation_seconds"] == [0.2, 0.2]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    # As a user runs it: a python of its own, which knows nothing of the test session's import paths.
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "chaos_bench.py"), "--report", str(path)],
                         capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]})
    assert run.returncode == 0, run.stderr
    table = run.stdout
    assert "Where the time to the first resumed step went, releases" in table
    assert "  first_step            25.0 s    17.0 s     2  the first resumed step ended (the trainer)" in table
