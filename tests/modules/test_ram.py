"""alicloud_ram_role, alicloud_ram_policy, alicloud_ram_policy_attachment against localcloud."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import oss2
import pytest
import yaml
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_tea_openapi.exceptions import ClientException

from ..localcloud.oss_support import Keys, oss2_bucket, root_keys, unique
from .conftest import BIN, ROOT, task

ROLE, POLICY = "it-ram-role", "it-ram-oss"
ACCESS = {"bucket": "it-ram-bucket", "read_prefixes": ["model/"], "write_prefixes": ["output/"]}


def present(description: str, bucket: str = "it-ram-bucket", **keywords):
    access = {**ACCESS, "bucket": bucket}
    return [
        task(f"role {description}", "alicloud_ram_role", {"name": ROLE, "description": "training"}, **keywords),
        task(f"policy {description}", "alicloud_ram_policy", {"name": POLICY, "oss_access": access}, **keywords),
        task(f"attach {description}", "alicloud_ram_policy_attachment",
             {"role_name": ROLE, "policy_name": POLICY}, **keywords),
    ]


def absent(description: str):
    return [
        task(f"detach {description}", "alicloud_ram_policy_attachment",
             {"role_name": ROLE, "policy_name": POLICY, "state": "absent"}),
        task(f"delete policy {description}", "alicloud_ram_policy", {"name": POLICY, "state": "absent"}),
        task(f"delete role {description}", "alicloud_ram_role", {"name": ROLE, "state": "absent"}),
    ]


def test_ram_role_policy_and_attachment_lifecycle(playbook, localcloud):
    run = playbook([
        *present("create"),
        *present("again"),
        *present("update in check mode", bucket="it-ram-other", check_mode=True),
        *present("update", bucket="it-ram-other"),
        *absent("first"),
        *absent("again"),
    ])
    assert run.returncode == 0, run.output[-3000:]
    for step in ("role", "policy"):
        assert run[f"{step} create"]["changed"] and not run[f"{step} again"]["changed"]
    assert run["attach create"]["changed"] and not run["attach again"]["changed"]
    assert run["role create"]["role"]["arn"].endswith(f":role/{ROLE}")
    assert not run["role update in check mode"]["changed"]
    assert run["policy update in check mode"]["changed"] and run["policy update"]["changed"]
    assert "it-ram-other" in run["policy update"]["policy"]["policy_document"]
    assert run["policy update"]["policy"]["default_version"] == "v2"
    for step in ("detach", "delete policy", "delete role"):
        assert run[f"{step} first"]["changed"] and not run[f"{step} again"]["changed"]
    ram = localcloud.client("ram")
    roles = [r.role_name for r in ram.list_roles(ram_models.ListRolesRequest()).body.roles.role]
    assert ROLE not in roles


def test_generated_policy_is_least_privilege(playbook):
    run = playbook([task("policy", "alicloud_ram_policy", {"name": "it-ram-least", "oss_access": ACCESS}),
                    task("cleanup", "alicloud_ram_policy", {"name": "it-ram-least", "state": "absent"})])
    document = json.loads(run["policy"]["policy"]["policy_document"])
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert "oss:*" not in actions and "oss:PutObject" in actions
    writes = next(s for s in document["Statement"] if "oss:PutObject" in s["Action"])
    assert writes["Resource"] == ["acs:oss:*:*:it-ram-bucket/output/*"]


def test_the_generated_policy_lets_the_training_agent_do_its_work_and_nothing_more(playbook, localcloud):
    """With the role's STS credentials: the lease and DescribeInstances work; other writes and calls are denied."""
    bucket, name = unique("it-ram-agent"), unique("it-ram-agent")
    oss2_bucket(localcloud, root_keys(localcloud), bucket).create_bucket()
    uid = localcloud.client("sts").get_caller_identity().body.account_id
    trust = {"Version": "1", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                            "Principal": {"RAM": [f"acs:ram::{uid}:root"]}}]}
    ram = localcloud.client("ram")
    role = ram.create_role(ram_models.CreateRoleRequest(role_name=name, assume_role_policy_document=json.dumps(
        trust))).body.role
    run = playbook([
        task("policy", "alicloud_ram_policy", {"name": name, "agent_access": {"region": localcloud.region},
                                               "oss_access": {**ACCESS, "bucket": bucket}}),
        task("attach", "alicloud_ram_policy_attachment", {"role_name": name, "policy_name": name}),
        task("agent access alone", "alicloud_ram_policy", {"name": f"{name}-x", "agent_access": {"region": "x"},
                                                           "policy_document": "{}"}, ignore_errors=True),
    ])
    assert run["attach"]["changed"], run.output[-3000:]
    assert "goes with oss_access" in run["agent access alone"]["msg"]
    creds = localcloud.client("sts").assume_role(sts_models.AssumeRoleRequest(
        role_arn=role.arn, role_session_name="agent")).body.credentials
    keys = Keys(creds.access_key_id, creds.access_key_secret, creds.security_token)
    ecs = localcloud.client("ecs", keys.access_key_id, keys.access_key_secret, keys.security_token)
    assert ecs.describe_instances(ecs_models.DescribeInstancesRequest(region_id=localcloud.region)).body is not None
    with pytest.raises(ClientException) as denied:
        ecs.delete_instance(ecs_models.DeleteInstanceRequest(instance_id="i-anyone", force=True))
    assert denied.value.code == "Forbidden.RAM"
    lease = oss2_bucket(localcloud, keys, bucket)
    lease.put_object("output/.train-lease", b"{}", headers={"x-oss-forbid-overwrite": "true"})
    lease.delete_object("output/.train-lease")
    with pytest.raises(oss2.exceptions.AccessDenied):
        lease.put_object("model/.train-lease", b"{}")


def test_unparsable_policy_fails_before_anything_is_created(playbook, localcloud):
    run = playbook([task("bad policy", "alicloud_ram_policy", {"name": "it-ram-bad", "policy_document": "{oops"},
                         ignore_errors=True),
                    task("attach to missing role", "alicloud_ram_policy_attachment",
                         {"role_name": "it-ram-missing", "policy_name": "x"}, ignore_errors=True)])
    assert run["bad policy"]["failed"] and "not valid JSON" in run["bad policy"]["msg"]
    assert "does not exist" in run["attach to missing role"]["msg"]
    policies = localcloud.client("ram").list_policies(ram_models.ListPoliciesRequest(policy_type="Custom"))
    assert "it-ram-bad" not in [p.policy_name for p in policies.body.policies.policy]


def test_bad_credentials_name_their_source_and_hide_the_secret(playbook):
    secret = "NotTheRealSecret1234567890"
    run = playbook([task("bad keys", "alicloud_ram_role", {"name": ROLE, "access_key": "LTAIunknownKey9876",
                                                           "secret_key": secret}, ignore_errors=True)], "-vvv")
    message = run["bad keys"]["msg"]
    assert "InvalidAccessKeyId.NotFound" in message and "the module options access_key/secret_key" in message
    assert "****9876" in message and "LTAIunknownKey9876" not in message
    # Neither the secret nor the id appear anywhere in -vvv's output (its invocation shows the module's options).
    assert secret not in run.output and "LTAIunknownKey9876" not in run.output


def test_no_credentials_at_all_is_said_at_once_as_a_credentials_problem(tmp_path):
    """No keys, profile or role anywhere (a real account, nothing exported): the default chain finds none,
    and the module says so before any call, instead of retrying a 'connection error' for seconds."""
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "no credentials", "spotfirst.finetune.alicloud_ram_role": {"name": ROLE, "region": "cn-hangzhou"}}]}]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_", "LOCALCLOUD_"))}
    env.update(HOME=str(tmp_path), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    run = subprocess.run([str(BIN / "ansible-playbook"), "-c", "local", "-i", "localhost,", str(play),
                          "-e", f"ansible_python_interpreter={sys.executable}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    result = json.loads(run.stdout[run.stdout.find("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["failed"] and result["msg"].startswith("No usable credentials: the default credentials chain")
    assert "Export ALIBABA_CLOUD_ACCESS_KEY_ID" in result["msg"] and "ConnectionError" not in result["msg"]
