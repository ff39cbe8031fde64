"""Bad input fails before anything is created: site.yml through ansible-runner on a records-backend
localcloud, once per bad setting. Each run fails in preflight.yml with a message that names the
setting, and the cloud holds afterwards exactly what it held before (no role, policy, bucket, network
or instance).

Also: overrides that take effect or are refused (a region the connection does not serve, another
account's keys in the environment on inventory/local), and the real-account inventory, which never
reads localcloud's env file.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_vpc20160428 import models as vpc_models

from ..e2e.conftest import run_playbook
from ..localcloud.oss_support import oss2_service, root_keys, v2_client
from .conftest import BIN, ROOT

# An existing bucket whose versioning is enabled (made by the `cloud` fixture).
VERSIONED = "versioned-lease-bucket"
# (what is wrong, the extra vars, what the message must name)
BAD_INPUTS = [
    ("bucket name with capitals and _", {"oss_bucket_name": "Bad_Bucket"}, "oss_bucket_name is 'Bad_Bucket'"),
    ("bucket name too short", {"oss_bucket_name": "ab"}, "oss_bucket_name is 'ab'"),
    ("bucket name starting with -", {"oss_bucket_name": "-data"}, "oss_bucket_name is '-data'"),
    ("bucket name too long", {"oss_bucket_name": "d" * 64}, "oss_bucket_name is 'dddd"),
    ("unknown zone", {"alicloud_zones": ["cn-hangzhou-j", "cn-hangzhou-z"]}, "alicloud_zones: 'cn-hangzhou-z'"),
    ("one zone", {"alicloud_zones": ["cn-hangzhou-j"], "alicloud_vswitch_cidrs": ["172.16.1.0/24"]},
     "alicloud_zones is ['cn-hangzhou-j']: give at least two zones"),
    ("three zones, two blocks", {"alicloud_zones": ["cn-hangzhou-h", "cn-hangzhou-j", "cn-hangzhou-k"]},
     "alicloud_vswitch_cidrs has 2 blocks for 3 zones"),
    ("a zone twice", {"alicloud_zones": ["cn-hangzhou-j", "cn-hangzhou-j"]}, "each zone once"),
    ("unknown instance type", {"alicloud_instance_type": "ecs.nothing-here"},
     "alicloud_instance_type is 'ecs.nothing-here'"),
    ("public VPC block", {"alicloud_vpc_cidr": "8.8.0.0/16"}, "alicloud_vpc_cidr is '8.8.0.0/16'"),
    ("VPC block with host bits", {"alicloud_vpc_cidr": "172.16.0.1/12"}, "alicloud_vpc_cidr is '172.16.0.1/12'"),
    ("VPC block not a block", {"alicloud_vpc_cidr": "the internet"}, "alicloud_vpc_cidr is 'the internet'"),
    ("overlapping vSwitches", {"alicloud_vswitch_cidrs": ["172.16.0.0/16", "172.16.2.0/24"]},
     "alicloud_vswitch_cidrs[1] is '172.16.2.0/24': it overlaps alicloud_vswitch_cidrs[0]"),
    ("the same block twice", {"alicloud_vswitch_cidrs": ["172.16.1.0/24", "172.16.1.0/24"]},
     "the same block as alicloud_vswitch_cidrs[0]"),
    ("vSwitch outside the VPC", {"alicloud_vswitch_cidrs": ["172.16.1.0/24", "10.1.0.0/24"]},
     "alicloud_vswitch_cidrs[1] is '10.1.0.0/24': it is not inside the VPC's block"),
    ("vSwitch with host bits", {"alicloud_vswitch_cidrs": ["172.16.1.5/24", "172.16.2.0/24"]},
     "alicloud_vswitch_cidrs[0] is '172.16.1.5/24': it has host bits set"),
    ("vSwitch too small", {"alicloud_vswitch_cidrs": ["172.16.1.0/24", "172.16.2.0/30"]},
     "alicloud_vswitch_cidrs[1] is '172.16.2.0/30'"),
    ("vSwitch not a block", {"alicloud_vswitch_cidrs": ["172.16.1.0/24", "17.2.16.2/99"]},
     "alicloud_vswitch_cidrs[1] is '17.2.16.2/99'"),
    ("min above max", {"scaling_group_min_size": 2}, "scaling_group_min_size (2) is above scaling_group_max_size"),
    ("negative max", {"scaling_group_max_size": -1}, "scaling_group_max_size is -1"),
    ("desired above max", {"scaling_group_desired_capacity": 5}, "scaling_group_desired_capacity (5) is outside"),
    ("max not a number", {"scaling_group_max_size": "many"}, "scaling_group_max_size is 'many'"),
    ("max 0", {"scaling_group_max_size": 0, "scaling_group_desired_capacity": 0},
     "scaling_group_max_size is 0"),
    ("negative save_steps", {"training_argument_overrides": {"save_steps": -5}}, "save_steps is -5"),
    ("negative learning rate", {"training_argument_overrides": {"learning_rate": -1}}, "learning_rate is -1"),
    ("learning rate not a number", {"training_argument_overrides": {"learning_rate": "fast"}},
     "learning_rate is 'fast'"),
    ("LoRA rank 0", {"training_argument_overrides": {"lora_rank": 0}}, "lora_rank is 0"),
    ("warmup ratio above 1", {"training_argument_overrides": {"warmup_ratio": 2}}, "warmup_ratio is 2"),
    ("no epoch", {"training_argument_overrides": {"num_train_epochs": 0}}, "num_train_epochs is 0"),
    ("batch size not a number", {"train_service_argument_overrides": {"per_device_train_batch_size": "one"}},
     "per_device_train_batch_size is 'one'"),
    ("no gradient accumulation", {"training_argument_overrides": {"gradient_accumulation_steps": 0}},
     "gradient_accumulation_steps is 0"),
    ("region override localcloud does not serve", {"alicloud_region": "cn-beijing"},
     "alicloud_region is 'cn-beijing' but the connection's region is 'cn-hangzhou'"),
    ("unknown workload", {"training_workload": "huge"}, "training_workload recipe or tiny"),
    # The training lease needs x-oss-forbid-overwrite, which OSS ignores on a versioned bucket.
    ("versioned bucket", {"oss_bucket_name": VERSIONED}, f"the bucket '{VERSIONED}' has versioning Enabled"),
    # ESS would refuse them after the foundation and the image were made.
    ("no spot instance pool", {"scaling_group_spot_instance_pools": 0},
     "scaling_group_spot_instance_pools is 0: ESS takes an integer from 1 to 10"),
    ("a spot strategy ESS does not take", {"scaling_configuration_spot_strategy": "Spot"},
     "scaling_configuration_spot_strategy is 'Spot': ESS takes NoSpot, SpotWithPriceLimit, SpotAsPriceGo"),
    # RunInstances would refuse it after the foundation was made.
    ("a key pair that does not exist", {"alicloud_key_pair_name": "no-such-key"},
     "alicloud_key_pair_name: The key pair no-such-key does not exist in cn-hangzhou"),
    ("a public key file that does not exist", {"alicloud_key_pair_name": "controller-key",
                                               "alicloud_key_pair_public_key_file": "/nonexistent/id_rsa.pub"},
     "public_key_file /nonexistent/id_rsa.pub does not exist"),
    ("a public key file without a name", {"alicloud_key_pair_public_key_file": "/nonexistent/id_rsa.pub"},
     "alicloud_key_pair_public_key_file is set without alicloud_key_pair_name"),
]


def resources(cloud: Any) -> dict[str, Any]:
    """What the account holds: roles, custom policies, buckets, VPCs, vSwitches, security groups, instances,
    scaling groups."""
    ram, vpc, ecs = cloud.client("ram"), cloud.client("vpc"), cloud.client("ecs")
    status = cloud.admin("status")
    return {
        "roles": sorted(r.role_name for r in ram.list_roles(ram_models.ListRolesRequest()).body.roles.role),
        "policies": sorted(p.policy_name for p in ram.list_policies(
            ram_models.ListPoliciesRequest(policy_type="Custom")).body.policies.policy),
        "buckets": sorted(b.name for b in oss2_service(cloud, root_keys(cloud)).list_buckets().buckets),
        "vpcs": sorted(v.vpc_id for v in vpc.describe_vpcs(
            vpc_models.DescribeVpcsRequest(region_id=cloud.region)).body.vpcs.vpc),
        "vswitches": sorted(v.v_switch_id for v in vpc.describe_vswitches(
            vpc_models.DescribeVSwitchesRequest(region_id=cloud.region)).body.v_switches.v_switch),
        "security_groups": sorted(g.security_group_id for g in ecs.describe_security_groups(
            ecs_models.DescribeSecurityGroupsRequest(region_id=cloud.region)).body.security_groups.security_group),
        "instances": sorted(i["InstanceId"] for i in status["instances"]),
        "scaling_groups": status["scaling_groups"],
    }


def failure_messages(run: Any) -> str:
    return " ".join(str(e["event_data"].get("res", {}).get("msg", "")) for e in run.events
                    if e.get("event") == "runner_on_failed")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from ..conftest import LocalCloud, start, stop

    state_dir = tmp_path_factory.mktemp("localcloud")
    cloud = LocalCloud(state_dir, start(state_dir, backend="records"))
    oss_client = v2_client(cloud, root_keys(cloud))
    oss_client.put_bucket(oss.PutBucketRequest(bucket=VERSIONED))
    oss_client.put_bucket_versioning(oss.PutBucketVersioningRequest(
        bucket=VERSIONED, versioning_configuration=oss.VersioningConfiguration(status="Enabled")))
    yield cloud
    stop(state_dir, "records")


def test_there_are_at_least_30_bad_inputs() -> None:
    assert len(BAD_INPUTS) >= 30 and len({name for name, _, _ in BAD_INPUTS}) == len(BAD_INPUTS)


@pytest.fixture(scope="module")
def probe(cloud: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """site.yml once per bad input, three at a time; the runs by input, and the account before and after."""
    base = tmp_path_factory.mktemp("probe")
    before = resources(cloud)
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = {what: pool.submit(run_playbook, cloud, "site.yml", base / f"run{i}", extravars, timeout=300)
                for i, (what, extravars, _) in enumerate(BAD_INPUTS)}
        done = {what: future.result() for what, future in runs.items()}
    return {"runs": done, "before": before, "after": resources(cloud)}


@pytest.mark.parametrize(("what", "extravars", "named"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_a_bad_setting_fails_before_anything_is_created(probe: dict[str, Any], what: str,
                                                       extravars: dict[str, Any], named: str) -> None:
    run = probe["runs"][what]
    assert run.rc != 0, f"{what}: site.yml succeeded"
    messages = failure_messages(run)
    assert named in messages, f"{what}: {messages or run.stdout[-3000:]}"
    # It failed in the first play, the checks, having changed nothing.
    assert run.changed() == 0, run.changed_tasks()
    plays = {e["event_data"].get("play") for e in run.events if e.get("event") == "playbook_on_task_start"}
    assert plays == {"Check versions, inventory and the cloud before anything changes"}, plays


def test_the_bad_inputs_left_the_account_as_it_was(probe: dict[str, Any]) -> None:
    assert probe["after"] == probe["before"]


def test_every_problem_is_in_the_one_message(cloud: Any, tmp_path: Path) -> None:
    run = run_playbook(cloud, "site.yml", tmp_path / "runner", {
        "oss_bucket_name": "Bad", "scaling_group_min_size": 3, "training_argument_overrides": {"lora_rank": 0}},
        timeout=300)
    messages = failure_messages(run)
    assert run.rc != 0 and "3 setting(s) to fix before anything is created" in messages, messages
    for named in ("oss_bucket_name is 'Bad'", "scaling_group_min_size (3)", "lora_rank is 0"):
        assert named in messages


def test_another_accounts_keys_in_the_environment_are_refused_on_localcloud(cloud: Any, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """inventory/local uses localcloud's keys; keys of something else in the environment would be ignored
    silently, so they are refused."""
    before = resources(cloud)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-someone-else")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-localclouds-secret")
    import ansible_runner

    env = {k: v for k, v in os.environ.items() if k != "LOCALCLOUD_HOME"}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), LOCALCLOUD_HOME=str(cloud.state_dir),
               PATH=f"{BIN}:{env.get('PATH', '')}", ANSIBLE_NOCOLOR="1")
    (tmp_path / "runner").mkdir()
    runner = ansible_runner.run(private_data_dir=str(tmp_path / "runner"), project_dir=str(ROOT),
                                playbook=str(ROOT / "site.yml"), inventory=str(ROOT / "inventory" / "local"),
                                envvars=env, quiet=True, timeout=300)
    messages = " ".join(str(e["event_data"].get("res", {}).get("msg", "")) for e in runner.events
                        if e.get("event") == "runner_on_failed")
    assert runner.rc != 0 and "ALIBABA_CLOUD_ACCESS_KEY_ID" in messages, messages
    assert "not-localclouds-secret" not in messages
    assert resources(cloud) == before


def test_the_real_account_inventory_never_reads_localclouds_env_file(cloud: Any) -> None:
    """With LOCALCLOUD_HOME set and no credentials in the environment, inventory/alicloud finds no credentials
    (it would list localcloud's instances with localcloud's key if it read its env file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_"))}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), LOCALCLOUD_HOME=str(cloud.state_dir), ANSIBLE_NOCOLOR="1")

    def inventory(name: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(ROOT / "inventory" / name), "--list"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return out

    assert "no credentials" not in inventory("local").stderr  # localcloud's inventory reads the env file
    assert "no credentials" in " ".join(inventory("alicloud").stderr.split())


def test_teardown_runs_with_the_settings_that_failed(cloud: Any, tmp_path: Path) -> None:
    """The bad settings that stopped site.yml do not stop teardown.yml from removing what exists."""
    run = run_playbook(cloud, "teardown.yml", tmp_path / "runner", {"oss_bucket_name": "Bad_Bucket"}, timeout=300)
    assert run.rc == 0, run.stdout[-3000:]
