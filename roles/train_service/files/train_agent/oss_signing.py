"""OSS signature V4 (`OSS4-HMAC-SHA256`), the one OSS takes on every bucket created since 2025-09-01.

OSS refuses V1 there (403, EC 0002-00000080; OSS's "Guidelines for upgrading V1 signatures to V4
signatures"). The agent signs its few object calls in the Authorization header, as OSS's "Include a V4
signature in the Authorization header" describes: a canonical request over the method, the
`/<bucket>/<key>` URI, the signed headers and the unsigned payload; a scope of the day, the bucket's
region and `oss`; a signing key chained from `aliyun_v4` + the secret. Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from typing import Protocol


class SigningKeys(Protocol):
    access_key_id: str
    access_key_secret: str


def oss_v4_authorization(keys: SigningKeys, region: str, method: str, bucket: str, key: str, headers: dict[str, str],
                         signed_at: time.struct_time) -> str:
    """The `Authorization` of an OSS request signed with V4 (OSS's "Include a V4 signature in the Authorization
    header"): Content-Type, Content-MD5 and every x-oss-* header (x-oss-date among them) signed; no query."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", signed_at)
    scope = f"{stamp[:8]}/{region}/oss/aliyun_v4_request"
    signed = sorted((name.lower(), value) for name, value in headers.items()
                    if name.lower().startswith("x-oss-") or name.lower() in ("content-type", "content-md5"))
    canonical = "\n".join([method, urllib.parse.quote(f"/{bucket}/{key}", safe="/"), "",
                           "".join(f"{name}:{value}\n" for name, value in signed), "",
                           headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")])
    to_sign = "\n".join(["OSS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = ("aliyun_v4" + keys.access_key_secret).encode()
    for part in (stamp[:8], region, "oss", "aliyun_v4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"OSS4-HMAC-SHA256 Credential={keys.access_key_id}/{scope},Signature={signature}"
