"""RAM roles and policies, and STS role credentials, through the official SDKs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models

from localcloud.auth import Principal
from localcloud.cloud import Cloud
from localcloud.credentials import issue_role_credentials
from localcloud.errors import ApiError
from localcloud.params import Params
from localcloud.products import ram as ram_product
from localcloud.registry import Request

from .ecs_support import api_error, unique


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


def allow(action: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": "*"}


def trust(principal: dict[str, Any]) -> str:
    return document({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal})


@pytest.fixture(scope="module")
def ram(localcloud: Any) -> Any:
    return localcloud.client("ram")


@pytest.fixture(scope="module")
def sts(localcloud: Any) -> Any:
    return localcloud.client("sts")


@pytest.fixture(scope="module")
def uid(sts: Any) -> str:
    return sts.get_caller_identity().body.account_id


@pytest.fixture
def make_role(ram: Any, uid: str) -> Callable[..., Any]:
    """Create a role trusted by the account (unless told otherwise); returns the SDK's Role."""
    def create(name: str | None = None, trust_document: str | None = None, **fields: Any) -> Any:
        request = ram_models.CreateRoleRequest(
            role_name=name or unique("role"),
            assume_role_policy_document=trust_document or trust({"RAM": [f"acs:ram::{uid}:root"]}), **fields)
        return ram.create_role(request).body.role
    return create


@pytest.fixture
def make_policy(ram: Any) -> Callable[..., str]:
    def create(*statements: dict[str, Any], name: str | None = None) -> str:
        name = name or unique("policy")
        ram.create_policy(ram_models.CreatePolicyRequest(
            policy_name=name, policy_document=document(*(statements or (allow("ram:Get*"),)))))
        return name
    return create


def attach(ram: Any, role: str, policy: str, policy_type: str = "Custom") -> None:
    ram.attach_policy_to_role(ram_models.AttachPolicyToRoleRequest(
        policy_type=policy_type, policy_name=policy, role_name=role))


def detach(ram: Any, role: str, policy: str, policy_type: str = "Custom") -> None:
    ram.detach_policy_from_role(ram_models.DetachPolicyFromRoleRequest(
        policy_type=policy_type, policy_name=policy, role_name=role))


def assume(sts: Any, arn: str, session: str = "tests", **fields: Any) -> Any:
    return sts.assume_role(sts_models.AssumeRoleRequest(role_arn=arn, role_session_name=session, **fields)).body


# -- roles -----------------------------------------------------------------------------------
def test_create_role_returns_the_role_with_its_arn(make_role: Callable[..., Any], uid: str) -> None:
    name = unique("TrainerRole")
    role = make_role(name, description="trains models", max_session_duration=7200)
    assert role.role_name == name
    assert role.arn == f"acs:ram::{uid}:role/{name.lower()}"
    assert role.description == "trains models"
    assert role.max_session_duration == 7200
    assert role.role_id and role.create_date.endswith("Z")
    assert json.loads(role.assume_role_policy_document)["Statement"][0]["Action"] == "sts:AssumeRole"


def test_create_role_twice_is_a_conflict_whatever_the_case(make_role: Callable[..., Any]) -> None:
    name = unique("Twice")
    make_role(name)
    err = api_error(make_role, name.upper())
    assert (err.code, err.status_code) == ("EntityAlreadyExists.Role", 409)


@pytest.mark.parametrize(("name", "code"), [
    ("bad name!", "InvalidParameter.RoleName.InvalidChars"),
    ("x" * 65, "InvalidParameter.RoleName.Length"),
])
def test_create_role_rejects_a_bad_name(make_role: Callable[..., Any], name: str, code: str) -> None:
    err = api_error(make_role, name)
    assert (err.code, err.status_code) == (code, 400)


@pytest.mark.parametrize("trust_document", [
    "{not json", json.dumps({"Version": "1", "Statement": []}),
    document({"Effect": "Allow", "Action": "sts:AssumeRole"}),
])
def test_create_role_rejects_a_malformed_trust_policy(make_role: Callable[..., Any], trust_document: str) -> None:
    err = api_error(make_role, None, trust_document)
    assert (err.code, err.status_code) == ("MalformedPolicyDocument", 400)


def test_get_role_of_an_unknown_role_is_not_found(ram: Any) -> None:
    err = api_error(ram.get_role, ram_models.GetRoleRequest(role_name=unique("missing")))
    assert (err.code, err.status_code) == ("EntityNotExist.Role", 404)


def test_get_role_finds_a_role_by_any_case(ram: Any, make_role: Callable[..., Any]) -> None:
    role = make_role(unique("Mixed"))
    got = ram.get_role(ram_models.GetRoleRequest(role_name=role.role_name.lower())).body.role
    assert (got.role_id, got.role_name) == (role.role_id, role.role_name)


def test_list_roles_pages_with_a_marker(ram: Any, make_role: Callable[..., Any]) -> None:
    names = {make_role().role_name for _ in range(3)}
    seen: list[str] = []
    marker = None
    while True:
        body = ram.list_roles(ram_models.ListRolesRequest(max_items=2, marker=marker)).body
        assert len(body.roles.role) <= 2
        seen += [r.role_name for r in body.roles.role]
        if not body.is_truncated:
            break
        marker = body.marker
    assert names <= set(seen)
    assert len(seen) == len(set(seen))


def test_update_role_changes_trust_description_and_duration(ram: Any, make_role: Callable[..., Any]) -> None:
    role = make_role()
    new_trust = trust({"Service": ["ecs.aliyuncs.com"]})
    updated = ram.update_role(ram_models.UpdateRoleRequest(
        role_name=role.role_name, new_assume_role_policy_document=new_trust, new_description="now for ECS",
        new_max_session_duration=10800)).body.role
    assert updated.assume_role_policy_document == new_trust
    assert (updated.description, updated.max_session_duration) == ("now for ECS", 10800)
    got = ram.get_role(ram_models.GetRoleRequest(role_name=role.role_name)).body.role
    assert got.description == "now for ECS"


def test_update_role_rejects_a_session_duration_out_of_range(ram: Any, make_role: Callable[..., Any]) -> None:
    role = make_role()
    err = api_error(ram.update_role, ram_models.UpdateRoleRequest(role_name=role.role_name,
                                                                  new_max_session_duration=60))
    assert (err.code, err.status_code) == ("InvalidParameter.NewMaxSessionDuration", 400)


def test_delete_role_is_refused_while_a_policy_is_attached(
        ram: Any, make_role: Callable[..., Any], make_policy: Callable[..., str]) -> None:
    role, policy = make_role().role_name, make_policy()
    attach(ram, role, policy)
    err = api_error(ram.delete_role, ram_models.DeleteRoleRequest(role_name=role))
    assert (err.code, err.status_code) == ("DeleteConflict.Role.Policy", 409)
    detach(ram, role, policy)
    ram.delete_role(ram_models.DeleteRoleRequest(role_name=role))
    err = api_error(ram.get_role, ram_models.GetRoleRequest(role_name=role))
    assert err.code == "EntityNotExist.Role"


# -- policies --------------------------------------------------------------------------------
def test_create_policy_and_get_its_default_version(ram: Any) -> None:
    name = unique("ReadBucket")
    text = document(allow(["oss:GetObject", "oss:ListObjects"]))
    created = ram.create_policy(ram_models.CreatePolicyRequest(
        policy_name=name, policy_document=text, description="read the bucket")).body.policy
    assert (created.policy_name, created.policy_type, created.default_version) == (name, "Custom", "v1")
    body = ram.get_policy(ram_models.GetPolicyRequest(policy_type="Custom", policy_name=name)).body
    assert body.policy.description == "read the bucket"
    assert body.policy.attachment_count == 0
    assert json.loads(body.default_policy_version.policy_document) == json.loads(text)
    assert body.default_policy_version.is_default_version is True


def test_create_policy_twice_is_a_conflict(ram: Any, make_policy: Callable[..., str]) -> None:
    name = make_policy()
    err = api_error(make_policy, allow("ram:Get*"), name=name)
    assert (err.code, err.status_code) == ("EntityAlreadyExists.Policy", 409)


@pytest.mark.parametrize("text", ["[]", "{", document({"Effect": "Maybe", "Action": "ram:*"})])
def test_create_policy_rejects_a_malformed_document(ram: Any, text: str) -> None:
    err = api_error(ram.create_policy, ram_models.CreatePolicyRequest(policy_name=unique("bad"),
                                                                      policy_document=text))
    assert (err.code, err.status_code) == ("MalformedPolicyDocument", 400)


def test_get_policy_of_an_unknown_policy_is_not_found(ram: Any) -> None:
    err = api_error(ram.get_policy, ram_models.GetPolicyRequest(policy_type="Custom", policy_name=unique("nope")))
    assert (err.code, err.status_code) == ("EntityNotExist.Policy", 404)


def test_system_policies_exist_and_can_be_listed(ram: Any) -> None:
    body = ram.list_policies(ram_models.ListPoliciesRequest(policy_type="System", max_items=1000)).body
    names = {p.policy_name for p in body.policies.policy}
    assert {"AliyunOSSFullAccess", "AliyunOSSReadOnlyAccess", "AliyunECSFullAccess"} <= names
    assert all(p.policy_type == "System" for p in body.policies.policy)
    got = ram.get_policy(ram_models.GetPolicyRequest(policy_type="System", policy_name="AliyunOSSFullAccess"))
    assert "oss:*" in got.body.default_policy_version.policy_document


def test_policy_versions_can_be_added_listed_switched_and_deleted(ram: Any, make_policy: Callable[..., str]) -> None:
    name = make_policy(allow("ram:GetRole"))
    v2 = ram.create_policy_version(ram_models.CreatePolicyVersionRequest(
        policy_name=name, policy_document=document(allow("ram:ListRoles")), set_as_default=True)).body.policy_version
    assert (v2.version_id, v2.is_default_version) == ("v2", True)
    versions = ram.list_policy_versions(ram_models.ListPolicyVersionsRequest(
        policy_type="Custom", policy_name=name)).body.policy_versions.policy_version
    assert [(v.version_id, v.is_default_version) for v in versions] == [("v2", True), ("v1", False)]
    err = api_error(ram.delete_policy_version, ram_models.DeletePolicyVersionRequest(policy_name=name,
                                                                                     version_id="v2"))
    assert (err.code, err.status_code) == ("DeleteConflict.PolicyVersion.Default", 409)
    ram.set_default_policy_version(ram_models.SetDefaultPolicyVersionRequest(policy_name=name, version_id="v1"))
    ram.delete_policy_version(ram_models.DeletePolicyVersionRequest(policy_name=name, version_id="v2"))
    got = ram.get_policy(ram_models.GetPolicyRequest(policy_type="Custom", policy_name=name)).body
    assert got.policy.default_version == "v1"
    assert "ram:GetRole" in got.default_policy_version.policy_document


def test_a_policy_holds_at_most_five_versions(ram: Any, make_policy: Callable[..., str]) -> None:
    name = make_policy()
    for _ in range(4):
        ram.create_policy_version(ram_models.CreatePolicyVersionRequest(
            policy_name=name, policy_document=document(allow("ram:Get*"))))
    err = api_error(ram.create_policy_version, ram_models.CreatePolicyVersionRequest(
        policy_name=name, policy_document=document(allow("ram:Get*"))))
    assert (err.code, err.status_code) == ("LimitExceeded.Policy.Version", 409)
    rotated = ram.create_policy_version(ram_models.CreatePolicyVersionRequest(
        policy_name=name, policy_document=document(allow("ram:Get*")),
        rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded")).body.policy_version
    assert rotated.version_id == "v6"


def test_delete_policy_is_refused_while_attached_unless_cascading(
        ram: Any, make_role: Callable[..., Any], make_policy: Callable[..., str]) -> None:
    role, policy = make_role().role_name, make_policy()
    attach(ram, role, policy)
    err = api_error(ram.delete_policy, ram_models.DeletePolicyRequest(policy_name=policy))
    assert (err.code, err.status_code) == ("DeleteConflict.Policy.Attachment", 409)
    ram.delete_policy(ram_models.DeletePolicyRequest(policy_name=policy, cascading_delete=True))
    listed = ram.list_policies_for_role(ram_models.ListPoliciesForRoleRequest(role_name=role)).body
    assert listed.policies.policy == []
    err = api_error(ram.get_policy, ram_models.GetPolicyRequest(policy_type="Custom", policy_name=policy))
    assert err.code == "EntityNotExist.Policy"


# -- attachments -----------------------------------------------------------------------------
def test_attach_and_list_policies_for_a_role(
        ram: Any, make_role: Callable[..., Any], make_policy: Callable[..., str]) -> None:
    role, policy = make_role().role_name, make_policy()
    attach(ram, role, policy)
    attach(ram, role, "AliyunOSSReadOnlyAccess", "System")
    listed = ram.list_policies_for_role(ram_models.ListPoliciesForRoleRequest(role_name=role)).body
    assert {(p.policy_type, p.policy_name) for p in listed.policies.policy} == {
        ("Custom", policy), ("System", "AliyunOSSReadOnlyAccess")}
    assert all(p.attach_date for p in listed.policies.policy)
    got = ram.get_policy(ram_models.GetPolicyRequest(policy_type="Custom", policy_name=policy)).body
    assert got.policy.attachment_count == 1


def test_attaching_twice_is_a_conflict(ram: Any, make_role: Callable[..., Any]) -> None:
    role = make_role().role_name
    attach(ram, role, "AliyunECSFullAccess", "System")
    err = api_error(attach, ram, role, "AliyunECSFullAccess", "System")
    assert (err.code, err.status_code) == ("EntityAlreadyExists.Role.Policy", 409)


def test_detaching_what_is_not_attached_is_not_found(
        ram: Any, make_role: Callable[..., Any], make_policy: Callable[..., str]) -> None:
    role, policy = make_role().role_name, make_policy()
    err = api_error(detach, ram, role, policy)
    assert (err.code, err.status_code) == ("EntityNotExist.Role.Policy", 404)


@pytest.mark.parametrize(("role_exists", "policy", "code"), [
    (True, "NoSuchPolicy", "EntityNotExist.Policy"),
    (False, "AliyunOSSFullAccess", "EntityNotExist.Role"),
])
def test_attaching_to_or_from_something_missing_is_not_found(
        ram: Any, make_role: Callable[..., Any], role_exists: bool, policy: str, code: str) -> None:
    role = make_role().role_name if role_exists else unique("ghost")
    err = api_error(attach, ram, role, policy, "System")
    assert (err.code, err.status_code) == (code, 404)


def test_attach_rejects_an_unknown_policy_type(ram: Any, make_role: Callable[..., Any]) -> None:
    err = api_error(attach, ram, make_role().role_name, "AliyunOSSFullAccess", "Managed")
    assert (err.code, err.status_code) == ("InvalidParameter.PolicyType", 400)


# -- STS -------------------------------------------------------------------------------------
def test_get_caller_identity_of_the_account(sts: Any, uid: str) -> None:
    body = sts.get_caller_identity().body
    assert (body.identity_type, body.arn) == ("Account", f"acs:ram::{uid}:root")


def test_assume_role_issues_working_credentials(
        localcloud: Any, sts: Any, make_role: Callable[..., Any], uid: str) -> None:
    role = make_role(unique("Worker"))
    started = time.time()
    body = assume(sts, role.arn, "alice", duration_seconds=900)
    creds = body.credentials
    assert creds.access_key_id.startswith("STS.")
    assert creds.security_token and creds.access_key_secret
    expires = time.mktime(time.strptime(creds.expiration, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert started + 890 <= expires <= time.time() + 910
    assert body.assumed_role_user.arn == f"{role.arn}/alice"
    assert body.assumed_role_user.assumed_role_id == f"{role.role_id}:alice"
    as_role = localcloud.client("sts", creds.access_key_id, creds.access_key_secret, creds.security_token)
    identity = as_role.get_caller_identity().body
    assert identity.identity_type == "AssumedRoleUser"
    assert identity.arn == f"acs:ram::{uid}:assumed-role/{role.role_name}/alice"
    assert identity.role_id == role.role_id


def test_assume_role_accepts_the_account_id_as_principal(sts: Any, make_role: Callable[..., Any], uid: str) -> None:
    role = make_role(trust_document=trust({"RAM": uid}))
    assert assume(sts, role.arn).credentials.access_key_id.startswith("STS.")


def test_a_role_trusting_only_a_service_cannot_be_assumed_with_a_key(
        sts: Any, make_role: Callable[..., Any]) -> None:
    role = make_role(trust_document=trust({"Service": ["ecs.aliyuncs.com"]}))
    err = api_error(assume, sts, role.arn)
    assert (err.code, err.status_code) == ("NoPermission", 403)


def test_an_explicit_deny_in_the_trust_policy_wins(sts: Any, make_role: Callable[..., Any], uid: str) -> None:
    principal = {"RAM": [f"acs:ram::{uid}:root"]}
    role = make_role(trust_document=document(
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": principal}))
    assert api_error(assume, sts, role.arn).code == "NoPermission"


def test_assume_role_of_an_unknown_role_is_not_found(sts: Any, uid: str) -> None:
    err = api_error(assume, sts, f"acs:ram::{uid}:role/{unique('ghost')}")
    assert (err.code, err.status_code) == ("EntityNotExist.Role", 404)


@pytest.mark.parametrize(("fields", "code"), [
    ({"duration_seconds": 600}, "InvalidParameter.DurationSeconds"),
    ({"duration_seconds": 7200}, "InvalidParameter.DurationSeconds"),
    ({"role_session_name": "a"}, "InvalidParameter.RoleSessionName"),
    ({"policy": "{broken"}, "InvalidParameter.PolicyGrammar"),
    ({"role_arn": "arn:aws:iam::1:role/x"}, "InvalidParameter.RoleArn"),
])
def test_assume_role_validates_its_parameters(
        sts: Any, make_role: Callable[..., Any], fields: dict[str, Any], code: str) -> None:
    role = make_role()  # MaxSessionDuration 3600 by default
    request = {"role_arn": role.arn, "role_session_name": "tests", **fields}
    err = api_error(sts.assume_role, sts_models.AssumeRoleRequest(**request))
    assert (err.code, err.status_code) == (code, 400)


def test_assume_role_allows_up_to_the_roles_max_session_duration(
        sts: Any, make_role: Callable[..., Any]) -> None:
    role = make_role(max_session_duration=7200)
    assert assume(sts, role.arn, duration_seconds=7200).credentials.expiration


def test_a_session_policy_narrows_the_roles_permissions(
        localcloud: Any, ram: Any, sts: Any, make_role: Callable[..., Any]) -> None:
    role = make_role()
    attach(ram, role.role_name, "AliyunRAMReadOnlyAccess", "System")
    creds = assume(sts, role.arn, policy=document(allow("ram:GetRole"))).credentials
    narrowed = localcloud.client("ram", creds.access_key_id, creds.access_key_secret, creds.security_token)
    assert narrowed.get_role(ram_models.GetRoleRequest(role_name=role.role_name)).body.role.role_id
    err = api_error(narrowed.list_roles, ram_models.ListRolesRequest())
    assert (err.code, err.status_code) == ("Forbidden.RAM", 403)


def test_role_credentials_can_assume_another_role_when_allowed(
        localcloud: Any, ram: Any, sts: Any, make_role: Callable[..., Any]) -> None:
    first, second = make_role(), make_role()
    creds = assume(sts, first.arn).credentials
    as_first = localcloud.client("sts", creds.access_key_id, creds.access_key_secret, creds.security_token)
    assert api_error(assume, as_first, second.arn).code == "Forbidden.RAM"
    attach(ram, first.role_name, "AliyunSTSAssumeRoleAccess", "System")
    assert assume(as_first, second.arn).assumed_role_user.arn == f"{second.arn}/tests"


# -- role credentials for the cloud's own services -------------------------------------------
def test_issue_role_credentials_for_a_service_role(tmp_path: Path) -> None:
    cloud = Cloud(tmp_path)
    try:
        root = Principal("root-key", cloud.account_uid)
        ram_product.create_role(cloud, Request("CreateRole", "ram", Params({
            "RoleName": "EcsTrainer", "AssumeRolePolicyDocument": trust({"Service": ["ecs.aliyuncs.com"]})}),
            root, "request", cloud.settings.region))
        before = time.time()
        creds = issue_role_credentials(cloud.store, "EcsTrainer", "i-bp1example", duration_seconds=1200)
        assert creds["AccessKeyId"].startswith("STS.")
        assert before + 1200 <= creds["ExpirationEpoch"] <= time.time() + 1200
        assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(creds["ExpirationEpoch"])) == creds["Expiration"]
        secret, principal = cloud.auth.resolve_key(creds["AccessKeyId"], creds["SecurityToken"])
        assert secret == creds["AccessKeySecret"]
        assert (principal.role_name, principal.session_name) == ("EcsTrainer", "i-bp1example")
        with pytest.raises(ApiError) as info:
            issue_role_credentials(cloud.store, "NoSuchRole", "i-bp1example")
        assert info.value.code == "EntityNotExist.Role"
    finally:
        cloud.close()
