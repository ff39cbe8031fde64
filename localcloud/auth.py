"""Request authentication as Alibaba Cloud does it, and authorization against RAM policies.

RPC requests carry either a V3 signature (`Authorization: ACS3-HMAC-SHA256 ...`, the Tea SDKs'
default) or a V1 signature (`Signature` parameter, HMAC-SHA1). Keys are the account's AccessKey
pairs or STS credentials issued by AssumeRole; calls made with STS credentials are authorized
against the assumed role's policies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from . import identities, policy
from .errors import ApiError
from .store import Store

MAX_SKEW_SECONDS = 15 * 60
NONCE_TTL_SECONDS = 15 * 60


@dataclass(frozen=True)
class Principal:
    """Who made a request: the account itself or an assumed RAM role."""

    access_key_id: str
    account_uid: str
    role_name: str | None = None
    session_name: str | None = None

    @property
    def is_root(self) -> bool:
        return self.role_name is None

    @property
    def arn(self) -> str:
        if self.is_root:
            return f"acs:ram::{self.account_uid}:root"
        return f"acs:ram::{self.account_uid}:assumed-role/{self.role_name}/{self.session_name}"


def same_secret(supplied: str, expected: str) -> bool:
    """A constant-time comparison that also takes non-ASCII input (a forged header, say)."""
    return hmac.compare_digest(supplied.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def _hmac(key: bytes, msg: str, algo: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), algo).digest()


def _encode(value: str) -> str:
    return quote(value, safe="~", encoding="utf-8")


def v3_canonical_query(params: dict[str, str]) -> str:
    return "&".join(f"{k}={_encode(params[k])}" for k in sorted(params))


def v3_signature(secret: str, method: str, path: str, params: dict[str, str], headers: dict[str, str],
                 signed_headers: list[str], payload_hash: str) -> str:
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers)
    canonical_request = "\n".join([
        method, path or "/", v3_canonical_query(params), canonical_headers,
        ";".join(signed_headers), payload_hash,
    ])
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return _hmac(secret.encode("utf-8"), string_to_sign, "sha256").hex()


def v1_signature(secret: str, method: str, params: dict[str, str]) -> str:
    pairs = "&".join(f"{_encode(k)}={_encode(params[k])}" for k in sorted(params) if k != "Signature")
    string_to_sign = f"{method}&%2F&{_encode(pairs)}"
    return base64.b64encode(_hmac(f"{secret}&".encode(), string_to_sign, "sha1")).decode()


def _parse_time(text: str) -> float:
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    raise ApiError("InvalidTimeStamp.Format", f"Specified time stamp or date value is not well formatted: {text}")


class Authenticator:
    """Looks up keys, checks signatures, nonces and clock skew."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def account_uid(self) -> str:
        return self.store.kv_get("account_uid")

    def resolve_key(self, access_key_id: str, security_token: str | None) -> tuple[str, Principal]:
        """The secret of a key and the principal it stands for, or Alibaba's error."""
        uid = self.account_uid
        if access_key_id.startswith("STS."):
            cred = identities.STS_CREDENTIAL.find(self.store, access_key_id)
            if cred is None:
                raise ApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
            if not security_token:
                raise ApiError("MissingSecurityToken", "The security token is required for STS credentials.")
            if not same_secret(security_token, cred["SecurityToken"]):
                raise ApiError("InvalidSecurityToken.MismatchWithAccessKey",
                               "The specified security token does not match the AccessKey ID.")
            if time.time() >= cred["ExpirationEpoch"]:
                raise ApiError("InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
            return cred["AccessKeySecret"], Principal(access_key_id, uid, cred["RoleName"], cred["RoleSessionName"])
        key = identities.ACCESS_KEY.find(self.store, access_key_id)
        if key is None or key.get("Status") != "Active":
            raise ApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        return key["AccessKeySecret"], Principal(access_key_id, uid)

    def _check_freshness(self, timestamp: str | None, nonce: str | None) -> None:
        if not timestamp:
            raise ApiError("MissingTimestamp",
                           "The input parameter \"Timestamp\" that is mandatory is not supplied.")
        if abs(time.time() - _parse_time(timestamp)) > MAX_SKEW_SECONDS:
            raise ApiError("InvalidTimeStamp.Expired",
                           f"Specified time stamp or date value is expired: {timestamp}. "
                           "Check that the client's clock is right (at most 15 minutes off).")
        if not nonce:
            raise ApiError("MissingSignatureNonce",
                           "The input parameter \"SignatureNonce\" that is mandatory is not supplied.")
        if not self.store.use_nonce(nonce, time.time(), NONCE_TTL_SECONDS):
            raise ApiError("SignatureNonceUsed", "Specified signature nonce was used already.")

    def authenticate_rpc(self, method: str, path: str, params: dict[str, str], headers: dict[str, str],
                         body: bytes) -> Principal:
        """Verify the signature of an RPC request; `headers` have lowercase names."""
        authorization = headers.get("authorization", "")
        if authorization.startswith("ACS3-HMAC-SHA256 "):
            return self._authenticate_v3(method, path, params, headers, body, authorization)
        if "Signature" in params:
            return self._authenticate_v1(method, params)
        raise ApiError("MissingSignature",
                       "The request is not signed: no Authorization header and no Signature parameter.")

    def _authenticate_v3(self, method, path, params, headers, body, authorization) -> Principal:
        fields = dict(part.split("=", 1) for part in authorization.split(" ", 1)[1].split(",") if "=" in part)
        access_key_id = fields.get("Credential", "")
        signed_headers = [h for h in fields.get("SignedHeaders", "").split(";") if h]
        if not access_key_id or not signed_headers or "Signature" not in fields:
            raise ApiError("IncompleteSignature", "The Authorization header is incomplete.")
        for required in ("host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"):
            if required not in signed_headers:
                raise ApiError("IncompleteSignature", f"The header {required} must be signed.")
        payload_hash = hashlib.sha256(body).hexdigest()
        if headers.get("x-acs-content-sha256") != payload_hash:
            raise ApiError("SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the request body.")
        secret, principal = self.resolve_key(access_key_id, headers.get("x-acs-security-token"))
        expected = v3_signature(secret, method, path, params, headers, signed_headers, payload_hash)
        if not same_secret(fields["Signature"], expected):
            raise ApiError("SignatureDoesNotMatch",
                           "Specified signature does not match our calculation. Check your AccessKey secret.")
        self._check_freshness(headers.get("x-acs-date"), headers.get("x-acs-signature-nonce"))
        return principal

    def _authenticate_v1(self, method: str, params: dict[str, str]) -> Principal:
        if params.get("SignatureMethod", "HMAC-SHA1") != "HMAC-SHA1":
            raise ApiError("InvalidSignatureMethod", "Only HMAC-SHA1 is supported for signature version 1.0.")
        access_key_id = params.get("AccessKeyId")
        if not access_key_id:
            raise ApiError("MissingAccessKeyId",
                           "The input parameter \"AccessKeyId\" that is mandatory is not supplied.")
        secret, principal = self.resolve_key(access_key_id, params.get("SecurityToken"))
        expected = v1_signature(secret, method, params)
        if not same_secret(params["Signature"], expected):
            raise ApiError("SignatureDoesNotMatch",
                           "Specified signature does not match our calculation. Check your AccessKey secret.")
        self._check_freshness(params.get("Timestamp"), params.get("SignatureNonce"))
        return principal

    # -- authorization -----------------------------------------------------------------------
    def role_policies(self, role_name: str) -> list[dict]:
        return [pol["Document"] for pol in identities.role_policies(self.store, role_name)]

    def session_policy(self, principal: Principal) -> dict | None:
        """The policy AssumeRole was given for these credentials, if any; it narrows the role's."""
        if principal.is_root:
            return None
        cred = identities.STS_CREDENTIAL.find(self.store, principal.access_key_id)
        return cred.get("Policy") if cred else None

    def authorize(self, principal: Principal, action: str, resource: str,
                  context: dict[str, str] | None = None) -> None:
        """Raise Forbidden.RAM unless the principal may perform `action` on `resource` (with the request's
        condition keys `context`)."""
        if principal.is_root:
            return
        session = self.session_policy(principal)
        allowed = policy.is_allowed(self.role_policies(principal.role_name), action, resource, context) and (
            session is None or policy.is_allowed([session], action, resource, context))
        if not allowed:
            raise ApiError("Forbidden.RAM",
                           f"User not authorized to operate on the specified resource, or this API doesn't support "
                           f"RAM. ({principal.arn} may not perform {action} on {resource})", 403)
