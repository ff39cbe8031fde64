"""alicloud_ram_role, alicloud_ram_policy, alicloud_ram_policy_attachment against localcloud."""

from __future__ import annotations

import json

from alibabacloud_ram20150501 import models as ram_models

from .conftest import task

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
    assert secret not in run.output
