"""site.yml, chaos.yml and teardown.yml end to end on container instances: training survives the loss
of its instance.

One localcloud at a time scale of 20 (the one-hour spot protection lasts three minutes), the tiny
workload (30 steps, a checkpoint every 3). chaos.yml releases the instance twice as the recipe's test
does, then reclaims it with notice while no zone has spot capacity (the group falls back to
pay-as-you-go) and gives the capacity back (the group returns to spot); training runs to completion.
The final adapter is compared with one from an uninterrupted run of the same configuration.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from localcloud.backends.containers import podman_usable

from .conftest import PROJECT, run_playbook
from .test_teardown import NOTHING, project_resources

pytestmark = [pytest.mark.containers, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHAOS = [
    "release",
    "release",
    {"action": "reclaim", "notice": 60, "spot_outage": True},
]
# The bucket mount of the scaling group's instances needs a client that takes the instance's RAM role
# credentials (see README, "Training survives the loss of its instance"); set E2E_CONTAINERS=1 where
# ossfs_mount provides one.
REASON = "set E2E_CONTAINERS=1 to run the container end-to-end scenario (needs a RAM-role bucket mount)"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    from tests.conftest import LocalCloud, start, stop

    if problem := podman_usable():
        pytest.skip(f"container instances need podman as root: {problem}")
    if os.environ.get("E2E_CONTAINERS") != "1":
        pytest.skip(REASON)
    state_dir = tmp_path_factory.mktemp("localcloud-e2e")
    yield LocalCloud(state_dir, start(state_dir, backend="containers", time_scale=20))
    stop(state_dir, "containers")


def download_prefix(cloud, prefix: str, target: Path) -> None:
    import alibabacloud_oss_v2 as oss

    from tests.localcloud.oss_support import root_keys, v2_client

    client = v2_client(cloud, root_keys(cloud))
    paginator = client.list_objects_v2_paginator()
    for page in paginator.iter_page(oss.ListObjectsV2Request(bucket=f"{PROJECT}-data", prefix=prefix)):
        for item in page.contents or []:
            path = target / item.key
            path.parent.mkdir(parents=True, exist_ok=True)
            client.get_object_to_file(oss.GetObjectRequest(bucket=f"{PROJECT}-data", key=item.key), str(path))


def uninterrupted_adapter(cloud, tmp_path: Path) -> Path:
    """Train the same configuration without interruption on the host; the final adapter's path."""
    from tests.train_service.conftest import FILES, ensure_train_venv

    venv = ensure_train_venv()
    bucket = tmp_path / "bucket"
    download_prefix(cloud, "", bucket)
    config = json.loads(subprocess.run(
        ["podman", "exec", current_instance(cloud), "cat", "/etc/train-agent/config.json"],
        check=True, capture_output=True, text=True).stdout)
    rebased = json.loads(json.dumps(config).replace("/mnt/oss-data", str(tmp_path / "reference")))
    (tmp_path / "reference").mkdir()
    for name in os.listdir(bucket):
        if name != "output":
            os.symlink(bucket / name, tmp_path / "reference" / name)
    rebased.update(swift=str(venv / "bin" / "swift"), python=str(venv / "bin" / "python"),
                   log_dir=str(tmp_path / "reference-log"))
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(rebased))
    run = subprocess.run([str(venv / "bin" / "python"), str(FILES / "train_agent.py"), "--config", str(path)],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    output = tmp_path / "reference" / "output"
    final = max(output.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return final / "adapter_model.safetensors"


def current_instance(cloud) -> str:
    status = cloud.admin("status")
    running = [i["InstanceId"] for i in status["instances"] if i["Status"] == "Running" and i["ScalingGroupId"]]
    assert running, status
    return running[0]


def test_training_survives_releases_and_a_reclaim_without_spot_and_matches_an_uninterrupted_run(
        cloud, tmp_path: Path) -> None:
    site = run_playbook(cloud, "site.yml", tmp_path / "site")
    assert site.rc == 0, site.stdout[-5000:]
    first_instance = current_instance(cloud)

    again = run_playbook(cloud, "site.yml", tmp_path / "site-again")
    assert again.rc == 0, again.stdout[-5000:]
    assert again.changed() == 0, again.changed_tasks()
    assert current_instance(cloud) == first_instance, "a second site.yml run must not disturb training"

    report_file = tmp_path / "chaos-report.json"
    chaos = run_playbook(cloud, "chaos.yml", tmp_path / "chaos", extravars={
        "chaos_actions": CHAOS, "chaos_wait_for_completion": True, "chaos_report_file": str(report_file)})
    assert chaos.rc == 0, chaos.stdout[-5000:]
    report = json.loads(report_file.read_text())

    # Two releases, the reclaim (pay-as-you-go replacement) and the return to spot: four resumes.
    interruptions = report["interruptions"]
    assert len(interruptions) == 4
    for item in interruptions:
        assert item["resumed_from"] >= item["checkpoint_at_release"] > 0
        assert item["first_step"] == item["resumed_from"] + 1
        assert item["resumed_from_path"].endswith(f"checkpoint-{item['resumed_from']}")
    assert [i["replacement_charge"] for i in interruptions] == ["spot", "spot", "pay-as-you-go", "spot"]
    assert report["training"]["complete"] is True
    bill = cloud.admin("bill")["by_charge_type"]
    assert {"spot", "pay-as-you-go"} <= set(bill), bill

    from safetensors.torch import load_file

    download_prefix(cloud, "output/", tmp_path / "bucket-output")
    output = tmp_path / "bucket-output" / "output"
    final = max(output.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    interrupted = load_file(final / "adapter_model.safetensors")
    reference = load_file(uninterrupted_adapter(cloud, tmp_path))
    assert interrupted.keys() == reference.keys()
    for name, tensor in reference.items():
        assert interrupted[name].equal(tensor), name

    teardown = run_playbook(cloud, "teardown.yml", tmp_path / "teardown")
    assert teardown.rc == 0, teardown.stdout[-4000:]
    assert project_resources(cloud) == NOTHING
