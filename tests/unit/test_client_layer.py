"""The client layer: credentials chain, retries with backoff, error translation, waiters."""

from __future__ import annotations

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import (
    AlicloudError,
    CredentialsError,
    backoff_delays,
    mask,
    resolve_credentials,
    tags_to_dict,
    wait_for,
    with_retries,
)

ENV = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
       "ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", "ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_ECS_METADATA")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def sdk_error(cls, code: str, status: int):
    return cls(code=code, message=f"code: {status}, text", status_code=status, request_id="REQ-1",
               data={"Code": code, "Message": "text", "RequestId": "REQ-1"})


def test_module_options_come_first_in_the_credentials_chain(monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envsecret")
    creds = resolve_credentials({"access_key": "LTAIoption1234", "secret_key": "s3cret"})
    assert creds.source == "the module options access_key/secret_key"
    assert creds.access_key_secret == "s3cret"
    assert "s3cret" not in creds.describe() and creds.describe().endswith("(access key id ****1234)")


def test_environment_credentials_carry_the_security_token(monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.key")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envsecret")
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "token")
    creds = resolve_credentials({})
    assert "environment" in creds.source
    assert creds.tea_fields() == {"access_key_id": "STS.key", "access_key_secret": "envsecret",
                                  "security_token": "token"}


def test_half_given_keys_are_refused():
    with pytest.raises(CredentialsError, match="together"):
        resolve_credentials({"access_key": "LTAIx"})


def test_profile_and_ecs_role_are_named_as_sources():
    assert resolve_credentials({"profile": "dev"}).source == "the profile 'dev'"
    assert "ECS RAM role 'trainer'" in resolve_credentials({"ecs_ram_role": "trainer"}).source


def test_mask_shows_only_the_last_four_characters():
    assert mask("LTAI5tAbCdEf") == "****CdEf"
    assert mask(None) == "(none)"


@pytest.mark.parametrize(("cls", "code", "status"), [
    (ClientException, "Throttling.User", 400),
    (ServerException, "InternalError", 500),
    (ServerException, "SomethingNew", 503),
])
def test_throttling_and_5xx_are_retried_with_backoff(cls, code, status):
    attempts, sleeps = [], []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise sdk_error(cls, code, status)
        return "ok"

    assert with_retries(flaky, "DescribeVpcs", attempts=5, sleep=sleeps.append) == "ok"
    assert len(attempts) == 3 and len(sleeps) == 2


def test_client_errors_fail_at_once_with_code_message_and_request_id():
    calls = []

    def refused():
        calls.append(1)
        raise sdk_error(ClientException, "InvalidParameter", 400)

    with pytest.raises(AlicloudError) as caught:
        with_retries(refused, "CreateVpc", sleep=lambda _: None)
    assert len(calls) == 1
    assert (caught.value.code, caught.value.message, caught.value.request_id) == ("InvalidParameter", "text", "REQ-1")


def test_retries_stop_after_the_last_attempt():
    sleeps = []
    with pytest.raises(AlicloudError, match="Throttling"):
        with_retries(lambda: (_ for _ in ()).throw(sdk_error(ClientException, "Throttling", 400)), "X",
                     attempts=4, sleep=sleeps.append)
    assert len(sleeps) == 3


def test_backoff_is_jittered_and_capped():
    delays = list(backoff_delays(8, base=0.5, cap=4.0))
    assert len(delays) == 7
    assert all(0 <= d <= min(4.0, 0.5 * 2 ** n) for n, d in enumerate(delays))


def test_tags_in_every_shape_become_a_dict():
    assert tags_to_dict({"Tag": [{"TagKey": "a", "TagValue": "1"}]}) == {"a": "1"}
    assert tags_to_dict([{"Key": "b", "Value": "2"}, {"Key": "acs:system", "Value": "x"}]) == {"b": "2"}
    assert tags_to_dict(None) == {}


def test_waiter_times_out_naming_what_it_waited_for():
    now = [0.0]

    def clock():
        now[0] += 1
        return now[0]

    with pytest.raises(TimeoutError, match="the image m-1 to be Available"):
        wait_for(lambda: {"Status": "Creating"}, lambda i: i["Status"] == "Available", timeout=3,
                 what="the image m-1 to be Available", sleep=lambda _: None, clock=clock)


def test_waiter_reports_a_failed_state():
    with pytest.raises(RuntimeError, match="CreateFailed"):
        wait_for(lambda: {"Status": "CreateFailed"}, lambda i: False, timeout=10, what="the image",
                 failed=lambda i: f"it is {i['Status']}", sleep=lambda _: None)


@pytest.mark.parametrize(("retries", "attempts"), [(0, 1), (1, 2), (5, 6), (None, 6)])
def test_api_retries_counts_the_retries_after_the_first_attempt(retries, attempts):
    from types import SimpleNamespace

    from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule

    assert AlicloudModule.attempts.fget(SimpleNamespace(params={"api_retries": retries})) == attempts
    calls = []

    def always_throttled():
        calls.append(1)
        raise ServerException(code="Throttling.User", message="Request was denied due to user flow control.",
                              stack="", status_code=400, request_id="r")

    with pytest.raises(AlicloudError):
        with_retries(always_throttled, "DescribeVpcs", attempts=attempts, sleep=lambda _: None)
    assert len(calls) == attempts


def _sdk_failure(endpoint: str, read_timeout_ms: int = 2000) -> Exception:
    """What the official ECS SDK raises when its request to `endpoint` does not get through."""
    from alibabacloud_ecs20140526 import models as ecs_models
    from alibabacloud_ecs20140526.client import Client
    from alibabacloud_tea_openapi import models as openapi_models
    from darabonba.runtime import RuntimeOptions

    client = Client(openapi_models.Config(access_key_id="LTAIkey", access_key_secret="secret", endpoint=endpoint,
                                          region_id="cn-hangzhou", protocol="http"))
    with pytest.raises(Exception) as failed:
        client.describe_regions_with_options(ecs_models.DescribeRegionsRequest(), RuntimeOptions(
            autoretry=False, connect_timeout=2000, read_timeout=read_timeout_ms))
    return failed.value


def test_an_endpoint_that_cannot_be_reached_is_named_with_the_cause() -> None:
    """Not `UnretryableException(<darabonba.policy.retry.RetryPolicyContext object at 0x...>)`: the host and why."""
    import socket

    unresolved = AlicloudError.from_sdk("DescribeRegions", _sdk_failure("ecs.no-such-region.invalid"))
    assert unresolved.code == "ConnectionError"
    assert unresolved.message.startswith("ecs.no-such-region.invalid:80 could not be reached: its name does not "
                                         "resolve"), unresolved.message
    refused = AlicloudError.from_sdk("DescribeRegions", _sdk_failure("127.0.0.1:9"))
    assert refused.message == ("127.0.0.1:9 could not be reached: the connection was refused (nothing listens "
                               "there)")
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        timed_out = AlicloudError.from_sdk("DescribeRegions", _sdk_failure(f"127.0.0.1:{port}", 500))
    assert timed_out.message.startswith(f"127.0.0.1:{port} could not be reached: it did not answer in time")
    for error in (unresolved, refused, timed_out):
        assert "object at 0x" not in error.message and error.retryable()


@pytest.mark.parametrize(("endpoint", "url"), [
    ("https://oss-cn-hangzhou-internal.aliyuncs.com", "https://bucket-1.oss-cn-hangzhou-internal.aliyuncs.com/a/b"),
    ("http://127.0.0.1:9000", "http://127.0.0.1:9000/bucket-1/a/b"),
])
def test_oss_is_addressed_virtual_hosted_on_a_domain_and_path_style_on_an_ip_address(endpoint, url):
    """OSS refuses the bucket in the path on its own domains (SecondLevelDomainForbidden); the SDK addresses an IP
    address (localcloud's endpoint) path-style by itself."""
    import alibabacloud_oss_v2 as oss
    from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule, Credentials

    module = object.__new__(AlicloudModule)
    module._clients, module.oss_endpoint, module.region = {}, endpoint, "cn-hangzhou"
    module.credentials = Credentials("the test", "LTAItest", "secret")
    presigned = module.oss().presign(oss.GetObjectRequest(bucket="bucket-1", key="a/b"))
    assert presigned.url.split("?", 1)[0] == url
