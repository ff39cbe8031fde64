"""Request authentication (V3 and V1 signatures, nonces, clock skew, STS tokens) and RAM authorization."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_vpc20160428 import models as vpc_models

from localcloud.store import Store
from tests.conftest import SDK_CLIENTS

from .ecs_support import api_error, unique


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


def list_roles(client: Any) -> Any:
    return client.list_roles(ram_models.ListRolesRequest())


@pytest.fixture(scope="module")
def uid(localcloud: Any) -> str:
    return localcloud.client("sts").get_caller_identity().body.account_id


@pytest.fixture
def role_credentials(localcloud: Any, uid: str) -> Callable[..., Any]:
    """STS credentials of a new role trusted by the account, with `statements` as its only policy."""
    ram, sts = localcloud.client("ram"), localcloud.client("sts")

    def issue(*statements: dict[str, Any], duration_seconds: int = 900) -> Any:
        role, policy = unique("role"), unique("policy")
        trust = document({"Effect": "Allow", "Action": "sts:AssumeRole",
                          "Principal": {"RAM": [f"acs:ram::{uid}:root"]}})
        ram.create_role(ram_models.CreateRoleRequest(role_name=role, assume_role_policy_document=trust))
        if statements:
            ram.create_policy(ram_models.CreatePolicyRequest(policy_name=policy,
                                                             policy_document=document(*statements)))
            ram.attach_policy_to_role(ram_models.AttachPolicyToRoleRequest(
                policy_type="Custom", policy_name=policy, role_name=role))
        return sts.assume_role(sts_models.AssumeRoleRequest(
            role_arn=f"acs:ram::{uid}:role/{role.lower()}", role_session_name="auth-tests",
            duration_seconds=duration_seconds)).body.credentials
    return issue


def client_for(localcloud: Any, product: str, creds: Any) -> Any:
    return localcloud.client(product, creds.access_key_id, creds.access_key_secret, creds.security_token)


# -- V3 signatures (the SDKs' default) -------------------------------------------------------
def test_an_unknown_access_key_is_not_found(localcloud: Any) -> None:
    client = localcloud.client("ram", "LTAIunknownkey000000000", "whatever")
    err = api_error(list_roles, client)
    assert (err.code, err.status_code) == ("InvalidAccessKeyId.NotFound", 404)


def test_a_wrong_secret_does_not_match_the_signature(localcloud: Any) -> None:
    client = localcloud.client("ram", localcloud.access_key_id, "not-the-secret")
    err = api_error(list_roles, client)
    assert (err.code, err.status_code) == ("SignatureDoesNotMatch", 400)


def test_a_reused_nonce_is_refused(localcloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    nonce = uuid.uuid4().hex
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: nonce))
    client = localcloud.client("ram")
    list_roles(client)
    err = api_error(list_roles, client)
    assert (err.code, err.status_code) == ("SignatureNonceUsed", 400)


@pytest.mark.parametrize("skew", [timedelta(minutes=-20), timedelta(minutes=20)])
def test_a_request_from_a_skewed_clock_is_expired(localcloud: Any, monkeypatch: pytest.MonkeyPatch,
                                                  skew: timedelta) -> None:
    stamp = (datetime.now(timezone.utc) + skew).strftime("%Y-%m-%dT%H:%M:%SZ")
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: stamp))
    err = api_error(list_roles, localcloud.client("ram"))
    assert (err.code, err.status_code) == ("InvalidTimeStamp.Expired", 400)


def test_a_small_clock_skew_is_tolerated(localcloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: stamp))
    assert list_roles(localcloud.client("ram")).body.request_id


# -- V1 signatures (HMAC-SHA1, built here from the published algorithm) ----------------------
def _percent(value: str) -> str:
    return quote(value, safe="~")


def v1_signed(params: dict[str, str], access_key_id: str, secret: str) -> dict[str, str]:
    signed = {
        **params, "Format": "JSON", "AccessKeyId": access_key_id, "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    canonical = "&".join(f"{_percent(k)}={_percent(signed[k])}" for k in sorted(signed))
    string_to_sign = f"POST&{_percent('/')}&{_percent(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return {**signed, "Signature": base64.b64encode(digest).decode()}


def post_v1(localcloud: Any, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    query = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in params.items())
    request = urllib.request.Request(f"http://{localcloud.endpoint}/?{query}", data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


V1_CALL = {"Action": "GetRole", "Version": "2015-05-01", "RoleName": "no role here: with spaces & symbols *~"}


def test_a_v1_signed_request_is_accepted(localcloud: Any) -> None:
    status, body = post_v1(localcloud, v1_signed(V1_CALL, localcloud.access_key_id,
                                                 localcloud.access_key_secret))
    # Authenticated: the request reaches RAM, which checks the (deliberately odd) role name.
    assert (status, body["Code"]) == (400, "InvalidParameter.RoleName.InvalidChars")
    status, body = post_v1(localcloud, v1_signed({"Action": "ListRoles", "Version": "2015-05-01"},
                                                 localcloud.access_key_id, localcloud.access_key_secret))
    assert status == 200 and "Roles" in body


def test_a_tampered_v1_request_is_refused(localcloud: Any) -> None:
    params = v1_signed(V1_CALL, localcloud.access_key_id, localcloud.access_key_secret)
    params["RoleName"] = "SomeoneElse"
    status, body = post_v1(localcloud, params)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")


def test_a_v1_request_with_a_wrong_secret_is_refused(localcloud: Any) -> None:
    status, body = post_v1(localcloud, v1_signed(V1_CALL, localcloud.access_key_id, "wrong"))
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")


# -- STS credentials -------------------------------------------------------------------------
def test_sts_credentials_authenticate(localcloud: Any, role_credentials: Callable[..., Any]) -> None:
    creds = role_credentials({"Effect": "Allow", "Action": "ram:ListRoles", "Resource": "*"})
    assert list_roles(client_for(localcloud, "ram", creds)).body.roles is not None


def test_sts_credentials_need_their_own_token(localcloud: Any, role_credentials: Callable[..., Any]) -> None:
    first, second = role_credentials(), role_credentials()
    client = localcloud.client("sts", first.access_key_id, first.access_key_secret, second.security_token)
    err = api_error(client.get_caller_identity)
    assert (err.code, err.status_code) == ("InvalidSecurityToken.MismatchWithAccessKey", 400)


def test_expired_sts_credentials_are_refused(localcloud: Any, role_credentials: Callable[..., Any]) -> None:
    creds = role_credentials()
    client = client_for(localcloud, "sts", creds)
    assert client.get_caller_identity().body.identity_type == "AssumedRoleUser"
    # Age the credentials in the cloud's own state rather than wait the 15 minutes STS allows at least.
    store = Store(localcloud.state_dir / "state.db")
    try:
        with store.transaction():
            record = store.get("sts_credential", creds.access_key_id)
            record["ExpirationEpoch"] = time.time() - 1
            store.put("sts_credential", creds.access_key_id, record)
    finally:
        store.close()
    err = api_error(client.get_caller_identity)
    assert (err.code, err.status_code) == ("InvalidSecurityToken.Expired", 400)


# -- authorization of role credentials -------------------------------------------------------
def test_role_credentials_may_do_what_the_role_allows_and_nothing_else(
        localcloud: Any, role_credentials: Callable[..., Any]) -> None:
    creds = role_credentials({"Effect": "Allow", "Action": ["ram:List*", "ram:GetRole"], "Resource": "*"})
    ram = client_for(localcloud, "ram", creds)
    assert list_roles(ram).body.request_id
    err = api_error(ram.create_role, ram_models.CreateRoleRequest(
        role_name=unique("denied"), assume_role_policy_document=document(
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": ["ecs.aliyuncs.com"]}})))
    assert (err.code, err.status_code) == ("Forbidden.RAM", 403)
    err = api_error(client_for(localcloud, "vpc", creds).describe_vpcs, vpc_models.DescribeVpcsRequest(
        region_id=localcloud.region))
    assert (err.code, err.status_code) == ("Forbidden.RAM", 403)


def test_an_explicit_deny_wins_over_an_allow(localcloud: Any, role_credentials: Callable[..., Any]) -> None:
    creds = role_credentials({"Effect": "Allow", "Action": "ram:*", "Resource": "*"},
                             {"Effect": "Deny", "Action": "ram:ListRoles", "Resource": "*"})
    ram = client_for(localcloud, "ram", creds)
    assert ram.list_policies(ram_models.ListPoliciesRequest()).body.request_id
    err = api_error(list_roles, ram)
    assert (err.code, err.status_code) == ("Forbidden.RAM", 403)


def test_a_role_without_policies_may_still_ask_who_it_is(
        localcloud: Any, role_credentials: Callable[..., Any]) -> None:
    creds = role_credentials()
    assert client_for(localcloud, "sts", creds).get_caller_identity().body.identity_type == "AssumedRoleUser"
    assert api_error(list_roles, client_for(localcloud, "ram", creds)).code == "Forbidden.RAM"


@pytest.mark.parametrize(("host", "product", "served"), [
    ("ecs-vpc.cn-hangzhou.aliyuncs.com", "ecs", True),
    ("ecs-cn-hangzhou.aliyuncs.com", "ecs", True),  # the ECS SDK's default host for the region
    ("ess-vpc.cn-hangzhou.aliyuncs.com", "ess", True),
    ("ess.aliyuncs.com", "ess", True),
    ("cms-vpc.cn-hangzhou.aliyuncs.com", "cms", True),  # CloudMonitor's VPC host
    ("metrics.cn-hangzhou.aliyuncs.com", "cms", True),  # and its public one
    ("ecs-vpc.cn-hangzhou.aliyuncs.com", "ess", False),  # an ESS call sent to ECS's host
    ("ecs-vpc.cn-hangzhou.aliyuncs.com", "sts", False),
    ("vpc-vpc.cn-hangzhou.aliyuncs.com", "ecs", False),
])
def test_each_product_answers_on_its_own_hosts(localcloud: Any, host: str, product: str, served: bool) -> None:
    """Alibaba's hosts serve their own product: another product's Version there is InvalidVersion (what
    ecs.aliyuncs.com answered an ESS call, aliyun-openapi-java-sdk#23). The SDK sends the request to the named
    host through localcloud as its HTTP proxy, so the Host header is that name."""
    module_name, class_name = SDK_CLIENTS[product]
    config = Config(access_key_id=localcloud.access_key_id, access_key_secret=localcloud.access_key_secret,
                    endpoint=host, protocol="http", region_id=localcloud.region)
    config.http_proxy = f"http://{localcloud.endpoint}"
    client = getattr(importlib.import_module(module_name), class_name)(config)
    models = importlib.import_module(module_name.replace(".client", ".models"))
    calls = {"ecs": ("describe_regions", "DescribeRegionsRequest", {}),
             "ess": ("describe_scaling_groups", "DescribeScalingGroupsRequest", {"region_id": localcloud.region}),
             "sts": ("get_caller_identity", None, {}),
             "cms": ("describe_custom_event_attribute", "DescribeCustomEventAttributeRequest", {})}
    method, request, fields = calls[product]
    call = getattr(client, method)
    args = (getattr(models, request)(**fields),) if request else ()
    if served:
        assert call(*args).body is not None
    else:
        error = api_error(call, *args)
        assert (error.code, error.status_code) == ("InvalidVersion", 400)
