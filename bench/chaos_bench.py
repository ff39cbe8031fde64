"""Chaos run figures: per interruption the steps lost, the training gap (the last step of the instance
taken away to the first of its replacement, from the trainers' own clocks), whether two trainers ever
ran at once and how long the two instances overlapped; then the time to the first resumed step and the
run's cost against all pay-as-you-go for the same instance time.

    python bench/chaos_bench.py                      # the report of the last chaos.yml run
    python bench/chaos_bench.py --report FILE        # another report (chaos_report_file)
    python bench/chaos_bench.py --run                # a fresh localcloud: site.yml, chaos.yml, teardown.yml

Handovers: a reclaim with notice and the return to spot, where the instance trains on until its
successor has loaded and then hands over; releases (the recipe's test) come without notice.
Seconds are wall-clock seconds; hours and costs come from localcloud's ledger (virtual clock), so the
ratio to all pay-as-you-go does not depend on the time scale.
"""

from __future__ import annotations

import argparse
import importlib.util
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
# Two releases at seeded moments, then a reclaim whose notice lasts 80 real seconds at a time scale of 60
# while no zone has spot capacity (pay-as-you-go replacement), then spot back (the scale-in hook).
CHAOS_ACTIONS = ["release", "release", {"action": "reclaim", "notice": 4800, "spot_outage": True}]


def load_cost_model() -> Any:
    """playbooks/filter_plugins/cost.py: hours by charge type priced as they ran and the recipe's three ways."""
    spec = importlib.util.spec_from_file_location("cost_filters", ROOT / "playbooks" / "filter_plugins" / "cost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COST = load_cost_model()


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The bench's figures from a chaos report."""
    interruptions = report["interruptions"]
    seconds = [i["seconds_to_first_step"] for i in interruptions]
    handovers = [i for i in interruptions if not i["cause"].startswith("release")]
    releases = [i for i in interruptions if i["cause"].startswith("release")]
    release_lost = [i["steps_lost"] for i in releases if i["steps_lost"] is not None]
    bill = report.get("bill") or {}
    by_type = bill.get("by_charge_type", {})
    priced = COST.price_hours({kind: line["hours"] for kind, line in by_type.items()},
                              float(report["prices"]["spot"]), float(report["prices"]["pay_as_you_go"]))
    all_on_demand = priced["cost"]["all_pay_as_you_go"]
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
        "cost": bill.get("total"),
        "cost_all_pay_as_you_go": round(all_on_demand, 6) if by_type else None,
        "cost_ratio": round(bill["total"] / all_on_demand, 3) if by_type and all_on_demand else None,
        "hours_by_charge_type": {kind: line["hours"] for kind, line in by_type.items()},
        "priced": priced if by_type else None,
    }


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
    def secs(value: float | None) -> str:
        return "?" if value is None else f"{value:.1f} s"

    print(f"interruptions: {result['interruptions']} (a periodic save every {result['save_steps']} steps)")
    for number, item in enumerate(result["per_interruption"], 1):
        print(f"  {number}. {item['cause']}: {item['steps_lost']} steps lost, training gap "
              f"{secs(item['training_gap_seconds'])}, trained at once: {item['trained_at_once']}, overlap "
              f"{secs(item['overlap_seconds'])}, first resumed step {secs(item['seconds_to_first_step'])} after "
              f"the interruption (interrupted {secs(item['pause_after_checkpoint'])} after chaos.yml saw a checkpoint)")
    print(f"handovers (notice, return to spot): steps lost {result['handover_steps_lost']}, median training gap "
          f"{secs(result['handover_median_training_gap_seconds'])}, shortest overlap of the two instances "
          f"{secs(result['handover_min_overlap_seconds'])}")
    print(f"releases without notice: steps lost {result['release_steps_lost']} (mean "
          f"{result['release_mean_steps_lost']}), median training gap "
          f"{secs(result['release_median_training_gap_seconds'])}")
    pairs = result["two_trainers_at_once"]
    print(f"two trainers at once: {'never' if pairs == [] else pairs}")
    print(f"interruption -> first resumed step: median {secs(result['median_seconds_to_first_resumed_step'])} "
          f"wall clock")
    if result["cost"] is not None:
        priced = result["priced"]
        print(f"cost: {result['cost']:.4f} RMB vs {result['cost_all_pay_as_you_go']:.4f} RMB all pay-as-you-go "
              f"(ratio {result['cost_ratio']}; hours by charge type {result['hours_by_charge_type']}, virtual clock)")
        print(f"the same {priced['hours']['total']:.3f} h all spot: {priced['cost']['all_spot']:.2f} RMB; as run: "
              f"{priced['cost']['as_run']:.2f} RMB, saving {priced['saving_percent']['as_run']} % against all "
              f"pay-as-you-go (all spot would save {priced['saving_percent']['all_spot']} %; the one-off template "
              "and bake are included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
