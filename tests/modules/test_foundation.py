"""playbooks/foundation.yml on a fresh localcloud: check mode on the empty account, idempotent, no secret
(nor the key id) in verbose output; check mode fails what could not be done."""

from __future__ import annotations

from .conftest import ROOT, run_file, run_playbook, task
from .test_bad_settings import resources


def test_foundation_twice_second_run_changes_nothing_and_hides_secrets(make_localcloud):
    cloud = make_localcloud()
    empty = resources(cloud)
    check = run_file(cloud, ROOT / "playbooks" / "foundation.yml", "--check")
    assert check.returncode == 0, check.output[-3000:]
    assert resources(cloud) == empty  # check mode created nothing ...
    assert check["Create the VPC"]["changed"] and check["Create the instances' RAM role, trusted by ECS"]["changed"]
    left_out = check["Say what check mode leaves out"]["msg"]  # ... and says what it could not look at
    assert "the attachment" in left_out and "2 vSwitches and the security group" in left_out
    first = run_file(cloud, ROOT / "playbooks" / "foundation.yml", "-vvv", callback="default")
    assert first.returncode == 0, first.output[-3000:]
    assert cloud.access_key_secret not in first.output and cloud.access_key_id not in first.output
    second = run_file(cloud, ROOT / "playbooks" / "foundation.yml")
    assert second.returncode == 0, second.output[-3000:]
    assert second.stats["changed"] == 0 and second.stats["ok"] >= 8
    again = run_file(cloud, ROOT / "playbooks" / "foundation.yml", "--check")
    assert again.returncode == 0 and again.stats["changed"] == 0, again.output[-3000:]
    assert again["Attach the OSS policy to the RAM role"]["attached"]  # looked at, now that the role exists


def test_check_mode_fails_what_could_not_be_done(make_localcloud, tmp_path):
    cloud = make_localcloud()
    zone = cloud.admin("status")["zones"][0]
    run = run_playbook(cloud, tmp_path, [
        task("vswitch in no VPC", "alicloud_vswitch", {"vpc_id": "vpc-nothere", "zone": zone,
                                                       "cidr_block": "172.16.9.0/24"}, ignore_errors=True),
        task("group in no VPC", "alicloud_security_group", {"vpc_id": "vpc-nothere", "name": "it-sg"},
             ignore_errors=True),
        task("attach to no role", "alicloud_ram_policy_attachment", {"role_name": "it-no-role",
                                                                     "policy_name": "AliyunOSSReadOnlyAccess",
                                                                     "policy_type": "System"}, ignore_errors=True),
    ], "--check")
    assert "The VPC vpc-nothere does not exist" in run["vswitch in no VPC"]["msg"]
    assert "The VPC vpc-nothere does not exist" in run["group in no VPC"]["msg"]
    assert "The role it-no-role does not exist" in run["attach to no role"]["msg"]


def test_a_run_that_fails_after_creating_names_what_it_created_and_how_to_remove_it(playbook):
    run = playbook([
        task("a VPC", "alicloud_vpc", {"name": "it-leftover", "cidr_block": "10.77.0.0/16"}, register="made"),
        task("a vSwitch", "alicloud_vswitch", {"vpc_id": "{{ made.vpc.vpc_id }}", "zone": "cn-hangzhou-h",
                                               "cidr_block": "10.77.1.0/24"}),
        {"name": "then a failure", "ansible.builtin.fail": {"msg": "something else went wrong"}},
    ])
    assert run.returncode != 0
    warning = " ".join(run.output.split())
    vpc = run["a VPC"]["vpc"]["vpc_id"]
    assert f"This run failed after it created or changed: vpc {vpc}, vswitch vsw-" in warning, warning[-2000:]
    assert "ansible-playbook teardown.yml" in warning
    clean = playbook([task("the same VPC", "alicloud_vpc", {"name": "it-leftover", "cidr_block": "10.77.0.0/16"})])
    assert "This run failed" not in clean.output  # a run that succeeds says nothing
