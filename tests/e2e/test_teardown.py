"""teardown.yml after a partial site.yml (no image: the template and bake skipped) and a second time."""

from __future__ import annotations

import json
from pathlib import Path

import alibabacloud_oss_v2 as oss
import pytest

from tests.localcloud.oss_support import root_keys, v2_client

from .conftest import PROJECT, run_playbook

pytestmark = pytest.mark.slow


def project_resources(cloud) -> dict[str, list[str]]:
    """What of the project is left on the cloud: instances, images, groups, roles, policies, buckets."""
    from alibabacloud_ecs20140526 import models as ecs
    from alibabacloud_ess20220222 import models as ess
    from alibabacloud_ram20150501 import models as ram

    instances = cloud.client("ecs").describe_instances(ecs.DescribeInstancesRequest(
        region_id=cloud.region, page_size=100)).body.to_map().get("Instances", {}).get("Instance", [])
    images = cloud.client("ecs").describe_images(ecs.DescribeImagesRequest(
        region_id=cloud.region, image_owner_alias="self", page_size=100)).body.to_map().get("Images", {}).get(
        "Image", [])
    groups = cloud.client("ess").describe_scaling_groups(ess.DescribeScalingGroupsRequest(
        region_id=cloud.region, page_size=50)).body.to_map().get("ScalingGroups", [])
    roles = cloud.client("ram").list_roles(ram.ListRolesRequest()).body.to_map().get("Roles", {}).get("Role", [])
    policies = cloud.client("ram").list_policies(ram.ListPoliciesRequest(policy_type="Custom")).body.to_map().get(
        "Policies", {}).get("Policy", [])
    listing = v2_client(cloud, root_keys(cloud)).list_buckets(oss.ListBucketsRequest())
    buckets = [b.name for b in listing.buckets or [] if b.name.startswith(PROJECT)]
    return {
        "instances": [i["InstanceId"] for i in instances],
        "images": [i["ImageName"] for i in images],
        "groups": [g["ScalingGroupName"] for g in groups],
        "roles": [r["RoleName"] for r in roles if r["RoleName"].startswith(PROJECT)],
        "policies": [p["PolicyName"] for p in policies if p["PolicyName"].startswith(PROJECT)],
        "buckets": buckets,
    }


def read_status(cloud, private_dir: Path, **extravars) -> dict:
    """status.yml's report as data (-e status_format=json), checked read-only: it changes nothing."""
    status_file = private_dir / "status.json"
    run = run_playbook(cloud, "status.yml", private_dir, extravars={
        **extravars, "status_format": "json", "status_file": str(status_file),
        "status_timeline_file": str(private_dir / "timeline.png")})
    assert run.rc == 0, run.stdout[-4000:]
    assert run.changed() == 0, run.changed_tasks()
    return json.loads(status_file.read_text())


NOTHING = {"instances": [], "images": [], "groups": [], "roles": [], "policies": [], "buckets": []}


def test_teardown_after_a_partial_site_leaves_nothing_and_a_second_teardown_changes_nothing(
        make_localcloud, tmp_path: Path) -> None:
    cloud = make_localcloud(time_scale=60)
    # site.yml up to the scaling group, from the system image (no template, no bake): the group
    # launches an instance; training never starts (records backend).
    partial = run_playbook(cloud, "site.yml", tmp_path / "site", skip_tags="template,bake,status",
                           extravars={"scaling_image_id": "debian_12_x64_20G_alibase_localcloud.vhd"})
    assert partial.rc == 0, partial.stdout[-4000:]
    left = project_resources(cloud)
    assert left["groups"] == [PROJECT] and left["buckets"] and left["roles"] and left["policies"]

    # No checkpoint yet: infer.yml says so and what to do, and launches nothing.
    infer = run_playbook(cloud, "infer.yml", tmp_path / "infer")
    assert infer.rc != 0
    assert "No valid checkpoint in oss://" in " ".join(infer.stdout.split()), infer.stdout[-3000:]
    assert project_resources(cloud)["instances"] == left["instances"]

    # status.yml: the group and its instance, no training yet, the template's absence costs nothing.
    status = read_status(cloud, tmp_path / "status-1")
    assert status["scaling_group"]["exists"] and [i["instance_id"] for i in status["instances"]] == left["instances"]
    assert status["training"]["state"] == "not started" and status["interruptions"] == []
    assert status["cost"]["training"]["instances"] == 1 and status["cost"]["one_off"]["instances"] == 0

    first = run_playbook(cloud, "teardown.yml", tmp_path / "teardown-1")
    assert first.rc == 0, first.stdout[-4000:]
    assert project_resources(cloud) == NOTHING

    # After teardown status.yml says there is nothing to show, and fails on nothing.
    gone = run_playbook(cloud, "status.yml", tmp_path / "status-2")
    assert gone.rc == 0 and "Traceback" not in gone.stdout, gone.stdout[-4000:]
    assert "Nothing to show: no scaling group ess-lora-deepseek7b" in " ".join(gone.stdout.split())

    second = run_playbook(cloud, "teardown.yml", tmp_path / "teardown-2")
    assert second.rc == 0, second.stdout[-4000:]
    assert second.changed() == 0, second.changed_tasks()
