"""STS credentials: temporary keys of a RAM role, for AssumeRole callers and the cloud's own services.

Credentials are `identities.STS_CREDENTIAL` records, keyed by their AccessKeyId, with the fields
localcloud.auth reads (AccessKeySecret, SecurityToken, ExpirationEpoch, RoleName, RoleSessionName)
and, when AssumeRole was given one, the session policy under "Policy". Expiry is on real wall time,
not the virtual clock: the SDKs and ossfs holding the credentials judge them by their own clocks.
The STS API (products/sts.py) and the instance metadata service both issue them here.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

from . import identities, ids
from .clock import iso_seconds
from .store import Store

Doc = dict[str, Any]

# Expired credentials are kept this long so that their use is answered "expired", not "not found".
EXPIRED_RETENTION_SECONDS = 24 * 3600


def _security_token() -> str:
    # Alibaba's tokens are long opaque base64 strings starting with "CAIS".
    return "CAIS" + base64.b64encode(secrets.token_bytes(240)).decode()


def _purge_expired(store: Store, now: float) -> None:
    cutoff = now - EXPIRED_RETENTION_SECONDS
    for cred in identities.STS_CREDENTIAL.all(store, lambda c: c["ExpirationEpoch"] < cutoff):
        identities.STS_CREDENTIAL.delete(store, cred["AccessKeyId"])


def issue(store: Store, role: Doc, session_name: str, duration_seconds: int, session_policy: dict | None) -> Doc:
    """New credentials of `role` (its record) for `duration_seconds`; the caller has checked that it may."""
    now = time.time()
    expires = now + duration_seconds
    record: Doc = {
        "AccessKeyId": ids.access_key_id("STS."),
        "AccessKeySecret": ids.secret(44),
        "SecurityToken": _security_token(),
        "Expiration": iso_seconds(expires),
        "ExpirationEpoch": expires,
        "IssuedEpoch": now,
        "RoleName": role["RoleName"],
        "RoleId": role["RoleId"],
        "RoleArn": role["Arn"],
        "RoleSessionName": session_name,
    }
    if session_policy is not None:
        record["Policy"] = session_policy
    with store.transaction():
        _purge_expired(store, now)
        identities.STS_CREDENTIAL.save(store, record)
    return record


def issue_role_credentials(store: Store, role_name: str, session_name: str, duration_seconds: int = 3600) -> Doc:
    """Temporary credentials for `role_name`, as a service trusted by the role would get them.

    No trust-policy check: the caller (the instance metadata service, tests) acts for the cloud.
    Returns the Credentials fields (AccessKeyId, AccessKeySecret, SecurityToken, Expiration) and the
    rest of the stored record (ExpirationEpoch, RoleName, RoleSessionName, ...); EntityNotExist.Role
    when there is no such role.
    """
    with store.transaction():
        return issue(store, identities.existing_role(store, role_name), session_name, duration_seconds, None)
