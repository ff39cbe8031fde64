"""alicloud_scaling_group, alicloud_scaling_configuration, alicloud_scaling_info and the inventory plugin."""

from __future__ import annotations

import json
import subprocess

from .conftest import BIN, ROOT, ansible_env, task

GROUP = "it-scaling"
IMAGE = "debian_12_x64_20G_alibase_localcloud.vhd"
INSTANCE_TYPE = "ecs.gn7i-c8g1.2xlarge"


def network():
    return [
        task("vpc", "alicloud_vpc", {"name": "it-scaling-vpc"}, register="vpc"),
        task("vswitches", "alicloud_vswitch", {"vpc_id": "{{ vpc.vpc.vpc_id }}", "zone": "{{ item.0 }}",
                                               "cidr_block": "{{ item.1 }}"},
             loop=[["cn-hangzhou-j", "172.16.1.0/24"], ["cn-hangzhou-k", "172.16.2.0/24"]], register="vsw"),
        task("sg", "alicloud_security_group", {"name": "it-scaling-sg", "vpc_id": "{{ vpc.vpc.vpc_id }}"},
             register="sg"),
    ]


def group(step: str, **options):
    args = {"name": GROUP, "min_size": 0, "max_size": 1, "desired_capacity": 0,
            "vswitch_ids": "{{ vsw.results | map(attribute='vswitch.v_switch_id') | list }}",
            "multi_az_policy": "COST_OPTIMIZED", "on_demand_base_capacity": 0,
            "on_demand_percentage_above_base_capacity": 0, "spot_instance_pools": 1, "spot_instance_remedy": True,
            "compensate_with_on_demand": True, "spot_auto_replace_on_demand": True, **options}
    return task(f"group {step}", "alicloud_scaling_group", args)


def configuration(step: str, **keywords):
    return task(f"config {step}", "alicloud_scaling_configuration", {
        "name": "ess-config", "scaling_group": GROUP, "image_id": IMAGE, "instance_types": [INSTANCE_TYPE],
        "spot_strategy": "SpotAsPriceGo", "spot_duration": 1, "password_inherit": True,
        "security_group_id": "{{ sg.security_group.security_group_id }}"}, **keywords)


def plain(value):
    """ansible-inventory writes values from plugins as {"__ansible_unsafe": value}."""
    return value.get("__ansible_unsafe", value) if isinstance(value, dict) else value


def test_spot_first_scaling_group_lifecycle(playbook, localcloud):
    run = playbook([
        *network(),
        group("min above max", min_size=2, max_size=1) | {"ignore_errors": True},
        group("desired outside", desired_capacity=5) | {"ignore_errors": True},
        task("unknown instance type", "alicloud_scaling_configuration", {
            "name": "bad", "scaling_group": GROUP, "image_id": IMAGE, "instance_types": ["ecs.nope"],
            "security_group_id": "sg-x"}, ignore_errors=True),
        group("create"),
        configuration("create"),
        configuration("again"),
        configuration("update in check mode", check_mode=True) | {"alicloud_scaling_configuration": {
            **configuration("x")["alicloud_scaling_configuration"], "spot_duration": 0}},
        group("enable", desired_capacity=1, active_scaling_configuration="ess-config", state="enabled"),
        group("again", desired_capacity=1, active_scaling_configuration="ess-config", state="enabled"),
        group("update in check mode", desired_capacity=0, state="enabled") | {"check_mode": True},
        task("info", "alicloud_scaling_info", {"scaling_group": GROUP}, register="info",
             until="info.instances | selectattr('lifecycle_state', 'eq', 'InService') | list | length == 1",
             retries=60, delay=1),
    ])
    assert run.returncode == 0, run.output[-3000:]
    assert "min_size (2) is greater than max_size (1)" in run["group min above max"]["msg"]
    assert "desired_capacity (5) must be between" in run["group desired outside"]["msg"]
    assert "Unknown instance type(s) ecs.nope" in run["unknown instance type"]["msg"]
    assert run["group create"]["changed"] and run["group create"]["scaling_group"]["multi_az_policy"] == \
        "COST_OPTIMIZED"
    assert run["config create"]["changed"] and not run["config again"]["changed"]
    assert run["config update in check mode"]["changed"]
    assert run["group enable"]["changed"] and not run["group again"]["changed"]
    assert run["group update in check mode"]["changed"]
    enabled = run["group again"]["scaling_group"]
    assert enabled["lifecycle_state"] == "Active" and enabled["desired_capacity"] == 1
    info = run["info"]
    assert info["spot_count"] == 1 and info["instances"][0]["charge"] == "spot" and info["activities"]

    inventory = subprocess.run([str(BIN / "ansible-inventory"), "--list"], cwd=ROOT, capture_output=True, text=True,
                               env=ansible_env(localcloud), timeout=120)
    listed = json.loads(inventory.stdout)
    instance_id = info["instances"][0]["instance_id"]
    assert instance_id in listed["alicloud"]["hosts"] and instance_id in listed["spot"]["hosts"]
    hostvars = {k: plain(v) for k, v in listed["_meta"]["hostvars"][instance_id].items()}
    assert hostvars["ansible_connection"] == "containers.podman.podman" and hostvars["ansible_host"] == instance_id
    assert hostvars["alicloud_zone"] in ("cn-hangzhou-j", "cn-hangzhou-k")

    done = playbook([
        *network(),
        configuration("update") | {"alicloud_scaling_configuration": {
            **configuration("x")["alicloud_scaling_configuration"], "spot_duration": 0}},
        task("delete", "alicloud_scaling_group", {"name": GROUP, "state": "absent", "force_delete": True}),
        task("delete again", "alicloud_scaling_group", {"name": GROUP, "state": "absent"}),
        task("config of a deleted group", "alicloud_scaling_configuration",
             {"name": "ess-config", "scaling_group": GROUP, "state": "absent"}),
    ])
    assert done.returncode == 0, done.output[-3000:]
    assert done["config update"]["changed"] and done["config update"]["scaling_configuration"]["spot_duration"] == 0
    assert done["delete"]["changed"] and not done["delete again"]["changed"]
    assert not done["config of a deleted group"]["changed"]
