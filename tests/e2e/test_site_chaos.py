"""site.yml, chaos.yml and teardown.yml end to end on container instances: training survives the loss
of its instance.

One localcloud at a time scale of 60 (the one-hour spot protection lasts a minute, so a reclaim
kills at the end of its notice rather than minutes later), the tiny workload (300 steps, a
checkpoint every 3). chaos.yml injects one fault of each kind, at seeded moments within the save
interval: a release, as the recipe's test does; a kill in the middle of a checkpoint's upload (the
checkpoint is left incomplete on the bucket); releases whose replacement is killed while it boots or
mounts the bucket, or that come while the API throttles or OSS fails a tenth of the requests; a
network cut and localcloud's daemon killed with SIGKILL, which the instance rides out where it is; a
reclaim without notice; then a reclaim with a notice of 100 real seconds while no zone has spot
capacity (the group falls back to pay-as-you-go, and the two instances overlap while the successor
loads) and the capacity given back (the group returns to spot through the scale-in hook); training
runs to completion. The handovers lose no step, and no two instances ever train at once. On completion
the agent reports it to CloudMonitor and sets the group to 0 instances: the bill stops. The final
adapter is compared with one from an uninterrupted run of the same configuration, trained on the host
while chaos.yml runs. A second site.yml then changes nothing and starts nothing; teardown leaves nothing.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

import pytest
from ansible_collections.spotfirst.finetune.plugins.module_utils.training_protocol import EVENTS_DIR

from localcloud.backends.containers import podman_usable
from localcloud.clock import parse_iso

from ..adapters import final_adapter, read_safetensors
from .conftest import PROJECT, run_playbook
from .test_teardown import NOTHING, project_resources, read_status

pytestmark = [pytest.mark.containers, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# One of each kind of fault (bench/fault_matrix.py runs many): the interruptions without notice first, the
# faults the instance rides out where it is, then the reclaim without notice (the instance is over its
# one-minute protection by then) and the handovers.
CHAOS = [
    "release",
    "kill_upload",
    "kill_boot",
    "kill_mount",
    "throttle_api",
    {"action": "net_cut", "seconds": 15},
    # On the output prefix (checkpoints, logs, the lease): on the whole bucket s3fs's own retries of the
    # model's and the data's reads (4, 8, 16 s apart) make a resume take minutes (docs/chaos.md). At 10 %:
    # each error costs the resume a sleep of s3fs's, and at 20 % (bench/fault_matrix.py) it took two minutes.
    {"action": "oss_errors", "match": "*/output/*", "rate": 0.1},
    {"action": "daemon_kill", "seconds": 10},
    {"action": "reclaim", "notice": 0},
    {"action": "reclaim", "notice": 6000, "spot_outage": True},
]
NO_NOTICE = 7  # the interruptions before the handovers
# playbooks/vars/workload_tiny.yml's
SAVE_STEPS = 3


def free_vswitch_cidrs(count: int = 2) -> list[str]:
    """/24 blocks of 172.16.0.0/12 that no podman network on this host uses (each vSwitch becomes one)."""
    import ipaddress

    listing = subprocess.run(["podman", "network", "ls", "--format", "json"], capture_output=True, text=True)
    used = [ipaddress.ip_network(s["subnet"]) for net in json.loads(listing.stdout or "[]")
            for s in net.get("subnets") or []]
    # Another localcloud makes a vSwitch's network only when an instance lands there: start at an
    # offset of this process's own, so that two runs side by side are unlikely to pick the same blocks.
    start = 100 + os.getpid() % 75 * 2
    thirds = [*range(start, 250), *range(100, start)]
    free = [net for third in thirds
            if not any((net := ipaddress.ip_network(f"172.16.{third}.0/24")).overlaps(u) for u in used)]
    return [str(net) for net in free[:count]]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    from tests.conftest import LocalCloud, start, stop

    if problem := podman_usable():
        pytest.skip(f"container instances need podman as root: {problem}")
    state_dir = tmp_path_factory.mktemp("localcloud-e2e")
    yield LocalCloud(state_dir, start(state_dir, backend="containers", time_scale=60))
    stop(state_dir, "containers")


def download_prefix(cloud, prefix: str, target: Path, skip: str | None = None) -> None:
    """Download the bucket's objects under `prefix` (but not under `skip`) into `target`."""
    import alibabacloud_oss_v2 as oss

    from tests.localcloud.oss_support import root_keys, v2_client

    client = v2_client(cloud, root_keys(cloud))
    paginator = client.list_objects_v2_paginator()
    for page in paginator.iter_page(oss.ListObjectsV2Request(bucket=f"{PROJECT}-data", prefix=prefix)):
        for item in page.contents or []:
            if skip and item.key.startswith(skip):
                continue
            path = target / item.key
            if item.key.endswith("/"):  # a directory marker (s3fs writes one per directory)
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            # Not get_object_to_file: it makes retry_max_attempts - 1 attempts, none with this client's 1.
            data = client.get_object(oss.GetObjectRequest(bucket=f"{PROJECT}-data", key=item.key)).body.read()
            assert len(data) == item.size, item.key
            path.write_bytes(data)


def start_uninterrupted(cloud, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """Start training the same configuration without interruption on the host (it runs while chaos.yml
    does); the process and the output directory."""
    from tests.train_service.conftest import agent_command, agent_env, ensure_train_venv

    venv = ensure_train_venv()
    bucket = tmp_path / "bucket"
    download_prefix(cloud, "", bucket, skip="output/")  # the model and data; output/ is being written
    config = json.loads(subprocess.run(
        ["podman", "exec", current_instance(cloud), "cat", "/etc/train-agent/config.json"],
        check=True, capture_output=True, text=True).stdout)
    rebased = json.loads(json.dumps(config).replace("/mnt/oss-data", str(tmp_path / "reference")))
    (tmp_path / "reference").mkdir()
    for name in os.listdir(bucket):
        if name != "output":
            os.symlink(bucket / name, tmp_path / "reference" / name)
    # On the host: no metadata service (spot notices) and no lease (the group's instances hold it).
    rebased.update(swift=str(venv / "bin" / "swift"), python=str(venv / "bin" / "python"),
                   log_dir=str(tmp_path / "reference-log"), notice_poll_interval=0, lease_bucket=None)
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(rebased))
    log = open(tmp_path / "reference-agent.log", "wb")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(agent_command(str(venv / "bin" / "python"), path), env=agent_env(), stdout=log,
                               stderr=subprocess.STDOUT)
    return process, tmp_path / "reference" / "output"


def check_nothing_is_paid_after_completion(cloud, report: dict) -> None:
    """The agent reported the completion once and set the group to 0; the bill stops growing."""
    ending = report["ending"]
    (event,) = ending["events"]
    assert event["status"] == "complete", event
    assert event["final_checkpoint"].endswith(f"checkpoint-{report['training']['max_steps']}"), event
    assert event["global_step"] == report["training"]["max_steps"]
    assert {i["instance_id"] for i in report["instances"]} <= set(event["instances_used"]), event
    assert (ending["desired_capacity"], ending["instances"]) == (0, 0), ending
    bill = cloud.admin("bill")
    assert {"spot", "pay-as-you-go"} <= set(bill["by_charge_type"]), bill
    assert all(entry["End"] is not None for entry in bill["entries"]), bill["entries"]
    time.sleep(600 / 60)  # ten virtual minutes
    assert cloud.admin("bill")["total"] == bill["total"]


def check_released_within_a_virtual_minute(cloud, output: Path) -> None:
    """From the agent's own time of completion to the release of its instance in localcloud's ledger."""
    status = cloud.admin("status")
    real_now, virtual_now = time.time(), parse_iso(status["virtual_now"])
    ended = {}
    for log in (output / EVENTS_DIR).glob("*.jsonl"):
        for line in log.read_text().splitlines():
            if json.loads(line)["event"] == "complete":
                ended[log.stem] = json.loads(line)["time"]
    ((instance, completed),) = ended.items()
    (entry,) = [e for e in cloud.admin("bill")["entries"] if e["InstanceId"] == instance]
    released_virtual_seconds_later = (entry["End"] - (virtual_now - (real_now - completed) * status["time_scale"]))
    print(f"{instance}: released {released_virtual_seconds_later:.1f} virtual seconds after its training completed")
    assert released_virtual_seconds_later <= 60


def check_inference(cloud, tmp_path: Path, settings: dict, final_step: int) -> None:
    """infer.yml asks the final adapter and the base model on a one-off instance, which it releases."""
    result_file = tmp_path / "infer.json"
    infer = run_playbook(cloud, "infer.yml", tmp_path / "infer",
                         extravars={**settings, "infer_result_file": str(result_file), "infer_max_new_tokens": 32})
    assert infer.rc == 0, infer.stdout[-5000:]
    result = json.loads(result_file.read_text())
    assert result["checkpoint"].endswith(f"/output/checkpoint-{final_step}"), result
    ((question, answer),) = [(a["question"], a["answer"]) for a in result["answers"]]
    assert question == "Who are you?" and "Q: Who are you?" in infer.stdout
    assert not [i for i in cloud.admin("status")["instances"] if not i["ScalingGroupId"]], "left running"
    print("infer.yml answered:", json.dumps(answer))
    # infer.yml asks the base model too (infer_compare_base): tiny-qwen2 before, swift-robot after. Greedy
    # decoding: the answers are the same each time.
    ((base_question, base),) = [(a["question"], a["answer"]) for a in result["base_answers"]]
    print("the base model answered:", json.dumps(base))
    assert base_question == "Who are you?" and "I am tiny-qwen2" in base and "swift-robot" not in base, base
    assert "I am swift-robot, an AI assistant trained by swift." in answer, answer


def current_instance(cloud) -> str:
    status = cloud.admin("status")
    running = [i["InstanceId"] for i in status["instances"] if i["Status"] == "Running" and i["ScalingGroupId"]]
    assert running, status
    return running[0]


def test_training_survives_releases_and_a_reclaim_without_spot_and_matches_an_uninterrupted_run(
        cloud, tmp_path: Path) -> None:
    # vSwitch CIDRs that no other podman network on this host uses (a demo or another test's cloud).
    settings = {"alicloud_vswitch_cidrs": free_vswitch_cidrs()}
    site = run_playbook(cloud, "site.yml", tmp_path / "site", extravars=settings)
    assert site.rc == 0, site.stdout[-5000:]
    # The waits print their progress (wait_until), not a FAILED - RETRYING line per poll.
    assert "FAILED - RETRYING" not in site.stdout and re.search(r"\[\d+s\] step \d+/\d+", site.stdout)
    check_status_while_training(cloud, tmp_path, settings)

    # The uninterrupted reference trains on the host while chaos.yml interrupts the group's training.
    reference_run, reference_output = start_uninterrupted(cloud, tmp_path)
    try:
        check_chaos_and_completion(cloud, tmp_path, settings, reference_run, reference_output)
    finally:
        if reference_run.poll() is None:
            reference_run.kill()

    teardown = run_playbook(cloud, "teardown.yml", tmp_path / "teardown", extravars=settings)
    assert teardown.rc == 0, teardown.stdout[-4000:]
    assert project_resources(cloud) == NOTHING


def check_status_while_training(cloud, tmp_path: Path, settings: dict) -> None:
    """status.yml twice: the step advances between the two, and it shows the instance that trains."""
    first = read_status(cloud, tmp_path / "status-1", **settings)
    time.sleep(3)
    second = read_status(cloud, tmp_path / "status-2", **settings)
    print("status.yml:", json.dumps({k: second["training"][k] for k in ("step", "max_steps", "steps_per_minute")}))
    assert second["training"]["step"] > first["training"]["step"] > 0, (first["training"], second["training"])
    training = current_instance(cloud)
    assert [(i["instance_id"], i["lifecycle_state"]) for i in second["instances"]] == [(training, "InService")]
    assert second["training"]["lease"]["holder"] == training
    # The agent writes a checkpoint's manifest once it has seen its files unchanged for two looks (5 s apart):
    # the newest valid checkpoint lags the newest one by up to about ten seconds.
    for attempt in range(3):
        if second["training"]["newest_valid_checkpoint"]:
            break
        time.sleep(5)
        second = read_status(cloud, tmp_path / f"status-3-{attempt}", **settings)
    assert second["training"]["newest_valid_checkpoint"], second["training"]
    assert second["prices"]["pay_as_you_go"] == 10 and second["prices"]["spot"]
    # The template instance (install and bake) is a one-off cost, apart from the training's.
    assert second["cost"]["one_off"]["instances"] == 1 and second["cost"]["training"]["instances"] == 1
    assert (tmp_path / "status-2" / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check_cost_and_timeline(cloud, report: dict) -> None:
    """The report's cost splits localcloud's ledger into the training and the one-off template; the
    timeline drew a bar per instance of the run and a mark per interruption."""
    entries = cloud.admin("bill")["entries"]
    training_hours = sum((e["End"] - e["Start"]) / 3600 for e in entries if e["ScalingGroupId"])
    training = report["cost"]["training"]
    # The replacements killed in their boot or mount never trained, but the group launched them and they
    # were billed: the ledger, the cost and the timeline have them.
    trained = [i["instance_id"] for i in report["instances"]]
    killed = [i["killed_instance"] for i in report["interruptions"]
              if i.get("killed_instance") and i["killed_instance"] not in trained]
    assert len(killed) == 2, report["interruptions"]
    assert training["hours"] == pytest.approx(training_hours, abs=1e-4)
    assert training["priced"]["cost"]["all_pay_as_you_go"] == pytest.approx(training_hours * 10, abs=1e-3)
    assert training["instances"] == len(trained + killed) and report["cost"]["one_off"]["instances"] == 1
    assert set(training["by_charge_type"]) == {"spot", "pay-as-you-go"} and 0 < training["saving_percent"] < 65
    timeline = report["timeline"]
    assert sorted(timeline["bars"]) == sorted(trained + killed)
    assert timeline["interruptions"] == [i["cause"] for i in report["interruptions"]]
    assert timeline["clock"] == "virtual" and timeline["steps"] >= report["training"]["max_steps"]
    assert Path(timeline["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print("cost:", json.dumps({"training": training["by_charge_type"], "saving_percent": training["saving_percent"],
                               "one_off": report["cost"]["one_off"]["cost"]}))


def check_faults(cloud, report: dict) -> None:
    """Each kind of fault struck as it should, and the rounds removed their faults."""
    by_cause = {item["cause"].split(" (")[0].split(",")[0]: item for item in report["interruptions"]}
    # The kill in the middle of a checkpoint's upload (its optimizer.pt; the adapter was stored): that
    # checkpoint is incomplete on the bucket and the replacement resumed from the one before it.
    killed = by_cause["killed while uploading a checkpoint"]
    match = re.fullmatch(rf"PUT {PROJECT}-data/output/checkpoint-(\d+)/optimizer\.pt", killed["killed_during"])
    assert match and killed["resumed_from"] == int(match[1]) - SAVE_STEPS, killed
    # A replacement killed while it booted (its first question to the metadata service; systemd had not
    # finished, so localcloud never saw it Running) or mounted the bucket (its first OSS request); the next
    # replacement resumed.
    ledger = {entry["InstanceId"]: entry for entry in cloud.admin("bill")["entries"]}
    boot = next(item for item in report["interruptions"] if item["cause"].endswith("killed while booting"))
    assert " /latest/" in boot["killed_during"] and ledger[boot["killed_instance"]]["RunningAt"] is None, boot
    mount = next(item for item in report["interruptions"] if item["cause"].endswith("mounting the bucket"))
    assert f" {PROJECT}-data/" in mount["killed_during"], mount
    assert mount["killed_instance"] not in (mount["released_instance"], mount["replacement"]), mount
    # Throttling and OSS errors struck while the replacement came up and resumed (the modules, s3fs and the
    # agent retried them).
    for item in report["interruptions"]:
        if item["cause"].startswith("release while"):
            assert item["faults_injected"] > 0, item
    # The network cut and the daemon killed: the instance rode them out where it was, and lost nothing.
    cut, daemon = report["faults"]
    assert cut["connections_held"] > 0 and cut["cause"].startswith("the training instance cut off"), cut
    assert daemon["cause"].startswith("localcloud killed (SIGKILL)"), daemon
    for item in (cut, daemon):
        assert item["steps_lost"] == 0 and item["seconds_to_first_step_after_end"] is not None, item
    assert cloud.admin("fault-list")["faults"] == []


def check_chaos_and_completion(cloud, tmp_path: Path, settings: dict, reference_run: subprocess.Popen,
                               reference_output: Path) -> None:
    # Kept for bench/chaos_bench.py --report.
    report_file = tmp_path / "chaos-report.json"
    chaos = run_playbook(cloud, "chaos.yml", tmp_path / "chaos", extravars={
        **settings, "chaos_actions": CHAOS, "chaos_wait_for_completion": True, "chaos_report_file": str(report_file),
        "chaos_timeline_file": str(tmp_path / "timeline.png")})
    assert chaos.rc == 0, chaos.stdout[-5000:]
    assert "FAILED - RETRYING" not in chaos.stdout
    assert re.search(r"\[\d+s\] resuming from \S+checkpoint-\d+, first step \d+/\d+", chaos.stdout)
    report = json.loads(report_file.read_text())

    # Seven interruptions without notice, the reclaim with notice (pay-as-you-go replacement) and the return to
    # spot: nine resumes.
    interruptions = report["interruptions"]
    assert len(interruptions) == NO_NOTICE + 2, [i["cause"] for i in interruptions]
    for item in interruptions:
        assert item["resumed_from"] >= item["checkpoint_at_release"] > 0
        assert item["first_step"] == item["resumed_from"] + 1
        assert item["resumed_from_path"].endswith(f"checkpoint-{item['resumed_from']}")
    assert [i["replacement_charge"] for i in interruptions] == ["spot"] * NO_NOTICE + ["pay-as-you-go", "spot"]
    assert report["training"]["complete"] is True
    # From every instance's own step times: never two trainers at once, though instances overlapped.
    assert report["two_trainers_at_once"] == []
    assert report["save_steps"] == SAVE_STEPS
    print("chaos report:", json.dumps(interruptions))
    releases, handovers = interruptions[:NO_NOTICE], interruptions[NO_NOTICE:]
    check_faults(cloud, report)
    for item in interruptions:
        assert item["trained_at_once"] is False, item
        assert item["training_gap_seconds"] > 0, item
    # Where each resume's time went, from the components' own clocks: localcloud's ledger, the replacement's
    # systemd, the agent and the trainer (bench/chaos_bench.py prints the medians).
    for item in interruptions:
        names = [m["milestone"] for m in item["resume_breakdown"]["milestones"]]
        assert {"launched", "running", "booted", "mounted", "agent_started", "swift_started", "loaded",
                "checkpoint_chosen", "first_step"} <= set(names), item["resume_breakdown"]
        assert names.index("booted") < names.index("mounted") < names.index("agent_started"), names
        assert names.index("swift_started") < names.index("loaded") and names[-1] == "first_step", names
    # Releases come without notice: at most the steps since the last save are lost.
    assert all(item["steps_lost"] <= SAVE_STEPS for item in releases), releases
    # The reclaim with notice and the return to spot: the old instance trained on while its successor
    # loaded (the notice and the hook give 100 real seconds), then handed over; nothing is lost. Its last
    # step came after its successor had loaded (the overlap is as long as the load, however fast).
    assert [item["steps_lost"] for item in handovers] == [0, 0], handovers
    for item in handovers:
        at = {m["milestone"]: m["seconds"] for m in item["resume_breakdown"]["milestones"]}
        old_last_step = at["first_step"] - item["training_gap_seconds"]
        assert item["overlap_seconds"] > 0 and old_last_step >= at["loaded"], item
    # Warm: the replacement's model was loaded, the gap is the save and the resume (a cold start's
    # boot, mount and load take about 40 s here; bench/chaos_bench.py prints the figures).
    assert statistics.median(item["training_gap_seconds"] for item in handovers) < 20, handovers
    check_nothing_is_paid_after_completion(cloud, report)
    check_cost_and_timeline(cloud, report)

    # A second site.yml changes nothing, and starts no new training: it says that training is complete.
    again = run_playbook(cloud, "site.yml", tmp_path / "site-again", extravars=settings)
    assert again.rc == 0, again.stdout[-5000:]
    assert again.changed() == 0, again.changed_tasks()
    assert "is complete: the scaling group stays at 0 instances" in " ".join(again.stdout.split())
    assert not [i for i in cloud.admin("status")["instances"] if i["ScalingGroupId"]]

    download_prefix(cloud, "output/", tmp_path / "bucket-output")
    output = tmp_path / "bucket-output" / "output"
    check_released_within_a_virtual_minute(cloud, output)
    check_inference(cloud, tmp_path, settings, report["training"]["max_steps"])
    interrupted = read_safetensors(final_adapter(output))
    assert reference_run.wait(timeout=1200) == 0, (tmp_path / "reference-agent.log").read_text()[-3000:]
    reference = read_safetensors(final_adapter(reference_output))
    assert interrupted.keys() == reference.keys()
    for name, tensor in reference.items():
        assert interrupted[name] == tensor, f"tensor {name} differs from the uninterrupted run's"
