"""Chaos run figures: per interruption the steps lost, the training gap (the last step of the instance
taken away to the first of its replacement, from the trainers' own clocks), whether two trainers ever
ran at once and how long the two instances overlapped; then the time to the first resumed step and the
run's cost against all pay-as-you-go for the same instance time.

    python bench/chaos_bench.py                      # the report of the last chaos.yml run
    python bench/chaos_bench.py --report FILE        # another report (chaos_report_file)
    python bench/chaos_bench.py --run                # a fresh localcloud: site.yml, chaos.yml, teardown.yml

Handovers: a reclaim with notice and the return to spot, where the instance trains on until its
successor has loaded and then hands over; releases (the recipe's test) and kills come without notice
(the table's "releases" are both).
Seconds are wall-clock seconds; hours and costs come from localcloud's ledger (virtual clock), so the
ratio to all pay-as-you-go does not depend on the time scale.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_REPORT = ROOT / ".cache" / "chaos-report.json"
# Two releases at seeded moments, then a reclaim whose notice lasts 100 real seconds at a time scale of 60
# while no zone has spot capacity (pay-as-you-go replacement), then spot back (the scale-in hook).
CHAOS_ACTIONS = ["release", "release", {"action": "reclaim", "notice": 6000, "spot_outage": True}]


# The collection's plugins by their collection names (collections/ansible_collections links back here).
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.spotfirst.finetune.plugins.filter import chaos  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.cost_model import cost_report  # noqa: E402


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The bench's figures from a chaos report."""
    interruptions = report["interruptions"]
    seconds = [i["seconds_to_first_step"] for i in interruptions]
    # With notice (a reclaim, the return to spot) the old instance hands over; releases and kills come without.
    handovers = [i for i in interruptions if is_handover(i)]
    releases = [i for i in interruptions if i not in handovers]
    release_lost = [i["steps_lost"] for i in releases if i["steps_lost"] is not None]
    bill = report.get("bill") or {}
    # The training apart from the one-off template and bake (reports before that split: from the entries).
    costs = report.get("cost") or (cost_report(bill["entries"], float(report["prices"]["spot"]),
                                                    float(report["prices"]["pay_as_you_go"]))
                                   if bill.get("entries") else None)
    return {
        "interruptions": len(interruptions),
        "per_interruption": [{key: i.get(key) for key in (
            "cause", "steps_lost", "training_gap_seconds", "trained_at_once", "overlap_seconds",
            "seconds_to_first_step", "pause_after_checkpoint")} for i in interruptions],
        "save_steps": report.get("save_steps"),
        "handover_steps_lost": [i["steps_lost"] for i in handovers],
        "handover_median_training_gap_seconds": median(
            [i["training_gap_seconds"] for i in handovers if i.get("training_gap_seconds") is not None]),
        "handover_min_overlap_seconds": min(
            (i["overlap_seconds"] for i in handovers if i.get("overlap_seconds") is not None), default=None),
        "release_steps_lost": release_lost,
        "release_mean_steps_lost": round(statistics.mean(release_lost), 2) if release_lost else None,
        "release_median_training_gap_seconds": median(
            [i["training_gap_seconds"] for i in releases if i.get("training_gap_seconds") is not None]),
        "two_trainers_at_once": report.get("two_trainers_at_once"),
        "median_seconds_to_first_resumed_step": median(seconds),
        "seconds_to_first_resumed_step": seconds,
        "steps_lost": [i["steps_lost"] for i in interruptions],
        "causes": [i["cause"] for i in interruptions],
        "cost": costs,
        "resume_segments": {kind: resume_segments(chosen) for kind, chosen in (("releases", releases),
                                                                               ("handovers", handovers))},
        "validation_seconds": [v for i in interruptions
                               if (v := (i.get("resume_breakdown") or {}).get("validation_seconds")) is not None],
        "training_complete": (report.get("training") or {}).get("complete"),
        "timeline": (report.get("timeline") or {}).get("path"),
    }


def is_handover(interruption: dict[str, Any]) -> bool:
    """A reclaim with notice or the return to spot: the old instance trains on until it hands over."""
    if "action" not in interruption:  # a report from before the records named their action
        return interruption["cause"].startswith(("reclaim", chaos.SPOT_BACK_CAUSE))
    return (interruption["action"] == "spot_back"
            or (interruption["action"] == "reclaim" and float(interruption.get("notice") or 0) > 0))


def resume_segments(interruptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per milestone of a resume (in RESUME_MILESTONES' order): in how many interruptions the records show it,
    the median seconds from the interruption to it and the median segment (since the milestone before it in
    that interruption); in the order of the medians."""
    rows = []
    for name, what, clock in chaos.RESUME_MILESTONES:
        found = [m for i in interruptions for m in (i.get("resume_breakdown") or {}).get("milestones", [])
                 if m["milestone"] == name]
        if found:
            rows.append({"milestone": name, "what": what, "clock": clock, "count": len(found),
                         "median_seconds": median([m["seconds"] for m in found]),
                         "median_segment": median([m["segment"] for m in found])})
    return sorted(rows, key=lambda row: row["median_seconds"])


def secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def print_summary(result: dict[str, Any]) -> None:
    """The figures as a short table: per interruption, then the cost."""
    print(f"{result['interruptions']} interruptions (a periodic save every {result['save_steps']} steps), "
          f"training {'complete' if result['training_complete'] else 'not complete'}")
    print(f"  {'#':<3}{'cause':<44}{'steps lost':>11}{'gap':>9}{'overlap':>9}{'to 1st step':>13}")
    for number, item in enumerate(result["per_interruption"], 1):
        lost = "?" if item["steps_lost"] is None else item["steps_lost"]
        print(f"  {number:<3}{item['cause'][:43]:<44}{lost:>11}{secs(item['training_gap_seconds']):>9}"
              f"{secs(item['overlap_seconds']):>9}{secs(item['seconds_to_first_step']):>13}")
    pairs = result["two_trainers_at_once"]
    print(f"  two trainers at once: {'never' if pairs == [] else pairs}; handovers lost "
          f"{result['handover_steps_lost']} steps (median gap {secs(result['handover_median_training_gap_seconds'])}),"
          f" releases {result['release_steps_lost']} (mean {result['release_mean_steps_lost']}); median time to the "
          f"first resumed step {secs(result['median_seconds_to_first_resumed_step'])} (wall clock)")
    for kind, rows in result["resume_segments"].items():
        if not rows:
            continue
        print(f"Where the time to the first resumed step went, {kind} (median seconds after the interruption; "
              f"the segment since the milestone before)")
        print(f"  {'milestone':<18}{'after':>10}{'segment':>10}{'seen':>6}  {'what (whose clock)'}")
        for row in rows:
            print(f"  {row['milestone']:<18}{secs(row['median_seconds']):>10}{secs(row['median_segment']):>10}"
                  f"{row['count']:>6}  {row['what']} ({row['clock']})")
    if result["validation_seconds"]:
        print(f"  checkpoint validation: median {secs(median(result['validation_seconds']))}")
    costs = result["cost"]
    if costs:
        training, priced, one_off = costs["training"], costs["training"]["priced"], costs["one_off"]
        print(f"Cost ({costs['currency']}; {costs['source']})")
        print(f"  {'':<52}{'hours':>8}{'cost':>10}")
        rows = [(f"training, {kind}", line["hours"], line["cost"]) for kind, line in training["by_charge_type"].items()]
        rows += [("training as run", training["hours"], training["cost"]),
                 ("the same hours all spot", None, priced["cost"]["all_spot"]),
                 ("the same hours all pay-as-you-go", None, priced["cost"]["all_pay_as_you_go"]),
                 ("one-off (template and bake)", one_off["hours"], one_off["cost"]),
                 ("total", None, costs["total"])]
        for label, hours, cost in rows:
            print(f"  {label:<52}{'' if hours is None else f'{hours:.3f}':>8}{cost:>10.2f}")
        print(f"  saving of the training against all pay-as-you-go: {training['saving_percent']} % "
              f"(all spot would save {priced['saving_percent']['all_spot']} %)")
    if result.get("timeline"):
        print(f"Timeline: {result['timeline']}")


def run_fresh(time_scale: float) -> Path:
    """site.yml, chaos.yml (CHAOS_ACTIONS), teardown.yml on a new localcloud."""
    state_dir = Path(tempfile.mkdtemp(prefix="chaos-bench-"))
    report = state_dir / "chaos-report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "LOCALCLOUD_"))}
    env.update(LOCALCLOUD_HOME=str(state_dir), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               PATH=f"{BIN}:{env.get('PATH', '')}")
    localcloud = [str(BIN / "localcloud"), "--state-dir", str(state_dir)]
    subprocess.run([*localcloud, "up", "--time-scale", str(time_scale)], check=True, env=env)
    try:
        for playbook, extra in (("site.yml", {}), ("chaos.yml", {"chaos_actions": CHAOS_ACTIONS,
                                                                 "chaos_wait_for_completion": True,
                                                                 "chaos_report_file": str(report)})):
            subprocess.run([str(BIN / "ansible-playbook"), playbook, "-e", json.dumps(extra)], cwd=ROOT, env=env,
                           check=True)
        subprocess.run([str(BIN / "ansible-playbook"), "teardown.yml"], cwd=ROOT, env=env, check=True)
    finally:
        subprocess.run([*localcloud, "down", "--purge"], env=env, check=False)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="a chaos.yml report (JSON)")
    parser.add_argument("--run", action="store_true", help="run site.yml and chaos.yml on a fresh localcloud first")
    parser.add_argument("--time-scale", type=float, default=60.0, help="localcloud's time scale with --run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    path = run_fresh(args.time_scale) if args.run else args.report
    if not path.is_file():
        print(f"chaos_bench: no report at {path}; run chaos.yml first (or --run)", file=sys.stderr)
        return 2
    result = figures(json.loads(path.read_text()))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
