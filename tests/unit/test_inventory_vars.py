"""What each inventory gives the controller and the instances, after Ansible's variable precedence.

A value in playbook-dir group_vars/all outranks an inventory's group_vars/all: a localcloud
override of a project-wide default must sit in the inventory's `localcloud` group, and a role
variable meant for the instances in the inventory's `all`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def host_vars(inventory: str, host: str = "localhost") -> dict:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "LOCALCLOUD_HOME"):
        env.pop(name, None)
    run = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", f"inventory/{inventory}",
                          "--playbook-dir", "playbooks", "--host", host],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


@pytest.mark.parametrize(("inventory", "kind", "hook_timeout"), [("local", "localcloud", 6000),
                                                                  ("alicloud", "alicloud", 600)])
def test_the_cloud_and_the_hook_timeout_follow_the_inventory(inventory: str, kind: str, hook_timeout: int) -> None:
    found = host_vars(inventory)
    assert found["cloud_kind"] == kind
    # Virtual seconds on localcloud: 100 real ones at a time scale of 60.
    assert found["scaling_lifecycle_hook_timeout"] == hook_timeout


def test_instances_reach_localclouds_api_over_its_front_door_and_alibabas_over_https() -> None:
    assert host_vars("local")["train_service_api_endpoint"] == "http://{product}-vpc.{region}.aliyuncs.com"
    assert "train_service_api_endpoint" not in host_vars("alicloud")  # the role's default: https


def test_localclouds_instances_wait_for_a_successor_inside_its_notices_and_hooks() -> None:
    found = host_vars("local")
    # Real seconds against virtual ones: at a time scale of 60 the hook holds a removal for 100 s.
    assert found["train_service_handover_wait"] < found["scaling_lifecycle_hook_timeout"] / 60
    assert "train_service_handover_wait" not in host_vars("alicloud")  # the role's default


def test_the_real_accounts_commented_endpoints_name_each_product_on_its_own_host() -> None:
    """inventory/alicloud's example of VPC endpoints, uncommented, is a mapping the modules take: a host of each
    product's own (a single endpoint would send ESS, VPC and STS calls to ECS)."""
    import yaml
    from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import RPC_PRODUCTS

    lines = (ROOT / "inventory" / "alicloud" / "group_vars" / "all" / "alicloud.yml").read_text().splitlines()
    start = lines.index("  # endpoints:")
    block = ["endpoints:"]
    for line in lines[start + 1:]:
        if not line.startswith("  #   "):
            break
        block.append(line.removeprefix("  # "))
    endpoints = yaml.safe_load("\n".join(block))["endpoints"]
    assert endpoints and set(endpoints) <= set(RPC_PRODUCTS)
    for product, host in endpoints.items():
        assert host == f"{product}-vpc.{{{{ alicloud_region }}}}.aliyuncs.com"
