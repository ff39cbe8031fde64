"""The fault matrix: many injected faults over complete trainings on container instances, a table per kind.

    python bench/fault_matrix.py                          # 50 faults (5 of each kind) over 2 trainings
    python bench/fault_matrix.py --per-kind 1 --trainings 1   # one of each kind (what the e2e test runs)
    python bench/fault_matrix.py --table .cache/fault-matrix.json   # print the table of an earlier run

It starts a localcloud of its own (container instances, time scale 60) and, for each training, runs
site.yml, chaos.yml with its share of the faults (every kind `--per-kind` times, in a seeded order, each
at a seeded moment within the save interval) until training is complete, then teardown.yml. The same
configuration trains once without interruption on the host, beside the first training. Per kind of fault
it prints: injected, trainings completed, final adapters identical to the uninterrupted run's, resumes
from an incomplete checkpoint, steps lost (median/max), seconds from the fault to the first step trained
after it (median/max), and what teardown left behind. All of it goes to .cache/fault-matrix.json.

About 30 minutes per training of 25 faults on two cores. It drives the e2e test's own helpers
(tests/e2e): the localcloud, the playbook runs, the reference training and the adapter comparison are
the test's.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The collection's module_utils by their collection names (collections/ links back to ROOT), as the tests have them.
sys.path.insert(0, str(ROOT / "collections"))

OUTPUT = ROOT / ".cache" / "fault-matrix.json"
WORK = ROOT / ".cache" / "fault-matrix"
# Each kind of fault as a chaos.yml action (plugins/filter/chaos.py's CHAOS_ACTIONS).
KINDS: dict[str, dict[str, Any]] = {
    "release": {"action": "release"},
    "reclaim, no notice": {"action": "reclaim", "notice": 0},
    "reclaim, no notice, no spot anywhere": {"action": "reclaim", "notice": 0, "spot_outage": True},
    "kill during a checkpoint upload": {"action": "kill_upload"},
    "kill during boot": {"action": "kill_boot"},
    "kill during the mount": {"action": "kill_mount"},
    "API throttling 20 %": {"action": "throttle_api", "rate": 0.2},
    # On the output prefix: on the whole bucket, s3fs's retries of the model's and the data's reads (4, 8,
    # 16 s apart) make each resume take minutes (docs/chaos.md); the writes, the lease and the checkpoint reads
    # are under output/.
    "OSS 503/500 at 20 % on output/": {"action": "oss_errors", "rate": 0.2, "match": "*/output/*"},
    "network cut 15 s": {"action": "net_cut", "seconds": 15},
    "localcloud SIGKILL, back in 10 s": {"action": "daemon_kill", "seconds": 10},
}
SPOT_BACK = "spot back (after no spot anywhere)"


def plan(per_kind: int, trainings: int, seed: int) -> list[list[dict[str, Any]]]:
    """Every kind `per_kind` times in a seeded order, dealt out to the trainings in turn."""
    faults = [{**action, "kind": kind} for kind, action in KINDS.items() for _ in range(per_kind)]
    random.Random(seed).shuffle(faults)
    return [faults[number::trainings] for number in range(trainings)]


def run_training(cloud: Any, number: int, actions: list[dict[str, Any]], seed: int, samples: int, work: Path,
                 reference: dict[str, Any]) -> dict[str, Any]:
    """site.yml, chaos.yml with `actions` to completion, teardown.yml: the chaos report and what was left."""
    from ansible_collections.spotfirst.finetune.plugins.module_utils.training_protocol import COMPLETE_MARKER

    from tests.adapters import final_adapter, read_safetensors
    from tests.e2e.conftest import run_playbook
    from tests.e2e.test_site_chaos import download_prefix, free_vswitch_cidrs, start_uninterrupted
    from tests.e2e.test_teardown import NOTHING, project_resources

    settings = {"alicloud_vswitch_cidrs": free_vswitch_cidrs(), "staging_tiny_samples": samples}
    started = time.time()
    site = run_playbook(cloud, "site.yml", work / "site", extravars=settings)
    if site.rc != 0:
        return {"training": number, "failed": "site.yml", "output": site.stdout[-3000:]}
    if "process" not in reference:  # the uninterrupted run, once, of the configuration the instance has
        reference["process"], reference["output"] = start_uninterrupted(cloud, work)
    report_file = work / "chaos-report.json"
    print(f"training {number}: {len(actions)} faults: {', '.join(a['kind'] for a in actions)}", flush=True)
    chaos = run_playbook(cloud, "chaos.yml", work / "chaos", timeout=7200, extravars={
        **settings, "chaos_actions": actions, "chaos_seed": seed * 100 + number, "chaos_wait_for_completion": True,
        "chaos_report_file": str(report_file), "chaos_timeline_file": str(work / "timeline.png")})
    result: dict[str, Any] = {"training": number, "actions": actions, "chaos_rc": chaos.rc,
                              "report": json.loads(report_file.read_text()) if report_file.exists() else None}
    if chaos.rc != 0:  # the evidence, before teardown takes it away: chaos.yml's end, the instances' journals
        result["output"] = chaos.stdout[-5000:]
        for instance in cloud.admin("status")["instances"]:
            journal = subprocess.run(["podman", "exec", instance["InstanceId"], "journalctl", "-u", "train",
                                      "--no-pager", "-o", "short-precise"], capture_output=True, text=True)
            (work / f"{instance['InstanceId']}.journal").write_text(journal.stdout + journal.stderr)
    # Complete by the agent's marker on the bucket, whatever chaos.yml made of it.
    output = work / "bucket-output" / "output"
    download_prefix(cloud, "output/", work / "bucket-output")
    complete = (output / COMPLETE_MARKER).is_file()
    if complete:
        result["adapter"] = read_safetensors(final_adapter(output))
    result["faults_left"] = cloud.admin("fault-list")["faults"]
    if result["faults_left"]:
        cloud.admin("fault-clear")
    teardown = run_playbook(cloud, "teardown.yml", work / "teardown", extravars=settings)
    left = project_resources(cloud)
    result.update(complete=complete, teardown_rc=teardown.rc, seconds=round(time.time() - started),
                  left_behind={kind: names for kind, names in left.items() if names != NOTHING.get(kind, [])})
    # The uninterrupted run has had a whole training's time to finish.
    process = reference.get("process")
    if not reference.get("adapter") and process is not None and process.wait(timeout=3600) == 0:
        reference["adapter"] = read_safetensors(final_adapter(reference["output"]))
    return result


def rows(trainings: list[dict[str, Any]], reference: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The table: one row per kind of fault (and one for the returns to spot that follow an outage)."""
    table: dict[str, dict[str, Any]] = {}
    for training in trainings:
        report = training.get("report") or {}
        identical = (training.get("adapter") is not None and reference is not None
                     and training["adapter"] == reference)
        records = [*(report.get("interruptions") or []), *(report.get("faults") or [])]
        actions = training.get("actions", [])
        kinds = [a["kind"] for a in actions] + [SPOT_BACK for a in actions if a.get("spot_outage")]
        for kind in dict.fromkeys(kinds):
            row = table.setdefault(kind, {"kind": kind, "planned": 0, "injected": 0, "trainings": 0, "chaos_passed": 0,
                                          "completed": 0, "identical": 0, "invalid_resumes": 0, "steps_lost": [],
                                          "seconds_to_first_step": [], "left_behind": []})
            mine = [r for r in records if (SPOT_BACK if r.get("kind") == "spot_back" else r.get("kind")) == kind]
            row["planned"] += kinds.count(kind)
            row["injected"] += len(mine)  # those chaos.yml got to and recorded
            row["trainings"] += 1
            row["chaos_passed"] += training.get("chaos_rc") == 0
            row["completed"] += bool(training.get("complete"))
            row["identical"] += identical
            row["invalid_resumes"] += sum(1 for r in mine if r.get("resumed_checkpoint_complete") is False)
            row["steps_lost"] += [r["steps_lost"] for r in mine if r.get("steps_lost") is not None]
            row["seconds_to_first_step"] += [
                s for r in mine if (s := r.get("seconds_to_first_step_after_end", r.get("seconds_to_first_step")))
                is not None]
            row["left_behind"] += [f"training {training['training']}: {training['left_behind']}"] \
                if training.get("left_behind") or training.get("faults_left") else []
    return list(table.values())


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):g} / {max(values):g}"


def print_table(table: list[dict[str, Any]]) -> None:
    print(f"{'fault':<38}{'injected':>9}{'trainings':>10}{'chaos.yml':>10}{'complete':>9}{'identical':>10}"
          f"{'invalid':>8}{'steps lost':>12}{'to 1st step (s)':>17}  left behind")
    print(f"{'':<38}{'':>9}{'':>10}{'passed':>10}{'':>9}{'adapter':>10}{'resumes':>8}{'med / max':>12}"
          f"{'med / max':>17}")
    for row in table:
        print(f"{row['kind']:<38}{row['injected']:>9}{row['trainings']:>10}{row.get('chaos_passed', '?'):>10}"
              f"{row['completed']:>9}"
              f"{row['identical']:>10}{row['invalid_resumes']:>8}{spread(row['steps_lost']):>12}"
              f"{spread(row['seconds_to_first_step']):>17}  {'; '.join(row['left_behind']) or 'nothing'}")
    injected = sum(row["injected"] for row in table if row["kind"] != SPOT_BACK)
    planned = sum(row.get("planned", row["injected"]) for row in table if row["kind"] != SPOT_BACK)
    print(f"{injected} faults injected and recorded, of {planned} planned")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-kind", type=int, default=5, help="faults of each kind (default 5: 50 in all)")
    parser.add_argument("--trainings", type=int, default=2, help="complete trainings to spread them over")
    parser.add_argument("--samples", type=int, default=800,
                        help="rows of each of the tiny workload's three datasets (800: 600 steps; the e2e test's "
                             "400 give 300, too few for 25 faults)")
    parser.add_argument("--seed", type=int, default=1, help="the order of the faults and their moments")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--table", type=Path, default=None, help="print the table of an earlier run's file")
    args = parser.parse_args()
    if args.table:
        print_table(json.loads(args.table.read_text())["table"])
        return 0

    from tests.conftest import LocalCloud, start, stop

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    state_dir = WORK / "localcloud"
    cloud = LocalCloud(state_dir, start(state_dir, backend="containers", time_scale=60))
    reference: dict[str, Any] = {}
    trainings = []
    began = time.time()
    try:
        for number, actions in enumerate(plan(args.per_kind, args.trainings, args.seed), 1):
            trainings.append(run_training(cloud, number, actions, args.seed, args.samples, WORK / f"training-{number}",
                                          reference))
            done = trainings[-1]
            print(f"training {number}: complete {done.get('complete')}, chaos.yml rc {done.get('chaos_rc')}, "
                  f"{done.get('seconds')} s, left behind {done.get('left_behind') or 'nothing'}", flush=True)
    finally:
        if reference.get("process") and reference["process"].poll() is None:
            reference["process"].kill()
        stop(state_dir, "containers")
    table = rows(trainings, reference.get("adapter"))
    print_table(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "per_kind": args.per_kind, "trainings": args.trainings, "seed": args.seed, "samples": args.samples,
        "seconds": round(time.time() - began), "table": table,
        "runs": [{key: value for key, value in t.items() if key != "adapter"} for t in trainings],
    }, indent=2, default=str))
    print(f"written to {args.out}")
    return 0 if all(t.get("complete") for t in trainings) else 1


if __name__ == "__main__":
    sys.exit(main())
