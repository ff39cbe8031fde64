"""Clients of localcloud's OSS endpoint (alibabacloud-oss-v2, oss2, boto3) and RAM-role credentials."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import alibabacloud_oss_v2 as oss
import boto3
import oss2
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models
from botocore.config import Config

from localcloud.store import Store

from .ecs_support import unique as unique  # one name maker for every test cloud


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None


def root_keys(localcloud: Any) -> Keys:
    return Keys(localcloud.access_key_id, localcloud.access_key_secret)


def v2_client(localcloud: Any, keys: Keys, **config: Any) -> oss.Client:
    """alibabacloud-oss-v2 (signature V4); an IP endpoint makes it use path style."""
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        keys.access_key_id, keys.access_key_secret, keys.security_token)
    cfg.region = localcloud.region
    cfg.endpoint = localcloud.oss_endpoint
    cfg.retry_max_attempts = 1
    for name, value in config.items():
        setattr(cfg, name, value)
    return oss.Client(cfg)


def oss2_bucket(localcloud: Any, keys: Keys, bucket: str, version: str = "v4") -> oss2.Bucket:
    """oss2, signing V4 (the bucket's region in the scope) or, given version="v1", V1: what ossfs 1.x
    sends unless mounted with sigv4, and what OSS refuses on a bucket created since 2025-09-01."""
    auth = (oss2.StsAuth(keys.access_key_id, keys.access_key_secret, keys.security_token, auth_version=version)
            if keys.security_token else oss2.make_auth(keys.access_key_id, keys.access_key_secret, version))
    return oss2.Bucket(auth, localcloud.oss_endpoint, bucket, connect_timeout=10, region=localcloud.region)


def oss2_service(localcloud: Any, keys: Keys, version: str = "v4") -> oss2.Service:
    return oss2.Service(oss2.make_auth(keys.access_key_id, keys.access_key_secret, version),
                        localcloud.oss_endpoint, region=localcloud.region)


def legacy_bucket(localcloud: Any, bucket: str) -> None:
    """Make `bucket` one created before OSS retired V1 signatures, so that it takes them still."""
    localcloud.admin("oss-legacy-bucket", {"bucket": bucket})


def s3_client(localcloud: Any, keys: Keys, signature: str = "s3v4", style: str = "path",
              endpoint: str | None = None) -> Any:
    """boto3 against OSS's S3-compatible API."""
    return boto3.client(
        "s3", endpoint_url=endpoint or localcloud.oss_endpoint, region_name=localcloud.region,
        aws_access_key_id=keys.access_key_id, aws_secret_access_key=keys.access_key_secret,
        aws_session_token=keys.security_token,
        config=Config(signature_version=signature, s3={"addressing_style": style},
                      retries={"max_attempts": 1}, request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"))


def raw_request(localcloud: Any, method: str, url: str, headers: dict[str, str] | None = None,
                body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send a request to localcloud whatever host the URL names (virtual-hosted names need no DNS)."""
    parts = urlsplit(url)
    port = urlsplit(localcloud.oss_endpoint).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target or "/", body=body, headers={"Host": parts.netloc, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# -- RAM roles with OSS policies ---------------------------------------------------------------
def account_uid(localcloud: Any) -> str:
    return localcloud.client("sts").get_caller_identity().body.account_id


def role_keys(localcloud: Any, *statements: dict[str, Any], duration: int = 900) -> Keys:
    """STS credentials of a new RAM role whose one custom policy holds `statements`."""
    ram = localcloud.client("ram")
    uid = account_uid(localcloud)
    name = unique("oss-role")
    trust = {"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                            "Principal": {"RAM": [f"acs:ram::{uid}:root"]}}], "Version": "1"}
    role = ram.create_role(ram_models.CreateRoleRequest(
        role_name=name, assume_role_policy_document=json.dumps(trust))).body.role
    ram.create_policy(ram_models.CreatePolicyRequest(
        policy_name=name, policy_document=json.dumps({"Version": "1", "Statement": list(statements)})))
    ram.attach_policy_to_role(ram_models.AttachPolicyToRoleRequest(
        policy_type="Custom", policy_name=name, role_name=name))
    creds = localcloud.client("sts").assume_role(sts_models.AssumeRoleRequest(
        role_arn=role.arn, role_session_name="oss-tests", duration_seconds=duration)).body.credentials
    return Keys(creds.access_key_id, creds.access_key_secret, creds.security_token)


def allow(actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def deny(actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": actions, "Resource": resources}


def expire(state_dir: Path, keys: Keys) -> None:
    """Make STS credentials expired, as 15 minutes of waiting would (the shortest STS lifetime)."""
    store = Store(state_dir / "state.db")
    try:
        record = store.get("sts_credential", keys.access_key_id)
        assert record is not None, "no such STS credential"
        record["ExpirationEpoch"] = 1.0
        store.put("sts_credential", keys.access_key_id, record)
    finally:
        store.close()
