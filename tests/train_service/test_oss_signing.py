"""The agent signs OSS requests with V4, as OSS's own SDK does: OSS refuses V1 on every bucket created since
2025-09-01, which is every bucket the project makes (localcloud refuses it too: tests/localcloud/test_oss_auth.py)."""

from __future__ import annotations

import datetime
import time
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_oss_v2.signer.v4 import SignerV4
from alibabacloud_oss_v2.types import HttpRequest, SigningContext
from train_agent.cloud import CloudError, Keys, OssClient, StaticCredentials
from train_agent.oss_signing import oss_v4_authorization

from ..localcloud.oss_support import root_keys, unique, v2_client

SIGNED_AT = time.struct_time((2026, 12, 7, 8, 30, 5, 0, 341, 0))


@pytest.mark.parametrize("token", [None, "CAIS-sts-token"])
@pytest.mark.parametrize(("method", "key", "extra"), [
    ("PUT", "output/.train-lease.json", {"x-oss-forbid-overwrite": "true", "Content-Type": "application/octet-stream",
                                         "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}),
    ("GET", "output/logs/i-1 a+b.jsonl", {}),  # a key to quote
    ("DELETE", "output/.train-successor.json", {}),
])
def test_the_signature_is_the_sdks(method: str, key: str, extra: dict[str, str], token: str | None) -> None:
    keys = Keys("LTAI5tAgentKey", "agent-secret", token)
    headers = {"x-oss-date": "20261207T083005Z", "x-oss-content-sha256": "UNSIGNED-PAYLOAD", **extra}
    if token:
        headers["x-oss-security-token"] = token
    ours = oss_v4_authorization(keys, "cn-hangzhou", method, "train-bucket", key, headers, SIGNED_AT)

    request = HttpRequest(method, f"https://train-bucket.oss-cn-hangzhou.aliyuncs.com/{key}", headers=dict(extra))
    context = SigningContext(bucket="train-bucket", key=key, region="cn-hangzhou", product="oss", request=request,
                             credentials=oss.credentials.Credentials("LTAI5tAgentKey", "agent-secret", token))
    context.signing_time = datetime.datetime(2026, 12, 7, 8, 30, 5, tzinfo=datetime.timezone.utc)
    SignerV4().sign(context)
    assert ours == request.headers["Authorization"]
    assert ours.startswith("OSS4-HMAC-SHA256 Credential=LTAI5tAgentKey/20261207/cn-hangzhou/oss/aliyun_v4_request,")


def test_the_agent_reads_and_writes_a_bucket_made_today(localcloud: Any) -> None:
    """A bucket localcloud creates is a new one, as every bucket made on Alibaba Cloud now is: V1 would be refused."""
    bucket = unique("agent-v4")
    v2_client(localcloud, root_keys(localcloud)).put_bucket(oss.PutBucketRequest(bucket=bucket))
    client = OssClient(localcloud.oss_endpoint, bucket, StaticCredentials(
        Keys(localcloud.access_key_id, localcloud.access_key_secret)), localcloud.region)
    client.put("output/a b+c.json", b"{}", forbid_overwrite=True)
    assert client.get("output/a b+c.json") == b"{}"
    with pytest.raises(CloudError) as taken:
        client.put("output/a b+c.json", b"{}", forbid_overwrite=True)
    assert taken.value.code == "FileAlreadyExists"
    client.delete("output/a b+c.json")
    assert client.get("output/a b+c.json") is None
