"""Chaos run figures: time from a release to the first resumed step (median), steps lost per release,
and the run's cost against all pay-as-you-go for the same instance time.

    python bench/chaos_bench.py                      # the report of the last chaos.yml run
    python bench/chaos_bench.py --report FILE        # another report (chaos_report_file)
    python bench/chaos_bench.py --run                # a fresh localcloud: site.yml, chaos.yml, teardown.yml

Seconds are wall-clock seconds on the controller; hours and costs come from localcloud's ledger
(virtual clock), so the ratio to all pay-as-you-go does not depend on the time scale.
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
CHAOS_ACTIONS = ["release", "release", {"action": "reclaim", "notice": 60, "spot_outage": True}]


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The bench's figures from a chaos report."""
    interruptions = report["interruptions"]
    seconds = [i["seconds_to_first_step"] for i in interruptions]
    bill = report.get("bill") or {}
    by_type = bill.get("by_charge_type", {})
    hours = sum(line["hours"] for line in by_type.values())
    all_on_demand = hours * float(report["prices"]["pay_as_you_go"])
    return {
        "interruptions": len(interruptions),
        "median_seconds_to_first_resumed_step": statistics.median(seconds) if seconds else None,
        "seconds_to_first_resumed_step": seconds,
        "steps_lost": [i["steps_lost"] for i in interruptions],
        "causes": [i["cause"] for i in interruptions],
        "cost": bill.get("total"),
        "cost_all_pay_as_you_go": round(all_on_demand, 6) if by_type else None,
        "cost_ratio": round(bill["total"] / all_on_demand, 3) if by_type and all_on_demand else None,
        "hours_by_charge_type": {kind: line["hours"] for kind, line in by_type.items()},
    }


def run_fresh(time_scale: float) -> Path:
    """site.yml, chaos.yml (two releases, a reclaim without spot capacity), teardown.yml on a new localcloud."""
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
    median = result["median_seconds_to_first_resumed_step"]
    print(f"interruptions: {result['interruptions']}")
    print(f"release -> first resumed step: median {median:.1f} s (each: "
          f"{', '.join(f'{s:.1f}' for s in result['seconds_to_first_resumed_step'])}) wall clock")
    print(f"steps lost per interruption: {result['steps_lost']}")
    if result["cost"] is not None:
        print(f"cost: {result['cost']:.4f} RMB vs {result['cost_all_pay_as_you_go']:.4f} RMB all pay-as-you-go "
              f"(ratio {result['cost_ratio']}; hours by charge type {result['hours_by_charge_type']}, virtual clock)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
