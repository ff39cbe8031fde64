"""Who signed a request: OSS V4 and V1 (headers or presigned URL) and AWS SigV4 and SigV2.

The expected signature is computed by the clients' own signers: alibabacloud_oss_v2's SignerV4 and
SignerV1 for OSS (V1 is also what oss2 and ossfs send; oss2's list of signed sub-resources is
added to the V2 SDK's), botocore's S3SigV4Auth and HmacV1Auth for S3 clients (boto3, s3fs).
They are fed the request as received: the raw path and query, the headers the client signed.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, unquote, urlsplit

from alibabacloud_oss_v2.signer.v1 import SignerV1
from alibabacloud_oss_v2.signer.v4 import SignerV4
from alibabacloud_oss_v2.types import HttpRequest, SigningContext
from botocore.auth import HmacV1Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from oss2.auth import ProviderAuth

from ..auth import Authenticator, Principal
from ..errors import ApiError
from .errors import access_denied, signature_mismatch

MAX_SKEW_SECONDS = 15 * 60
OSS2_SUBRESOURCES = list(ProviderAuth._subresource_key_set)


@dataclass
class SignedRequest:
    method: str
    host: str
    raw_path: str                       # as sent: percent-encoded, without the query
    raw_query: str
    headers: list[tuple[str, str]]      # as sent
    bucket: str | None
    key: str | None
    virtual_hosted: bool
    query: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.query = dict(parse_qsl(self.raw_query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def query_without(self, name: str) -> str:
        pairs = [p for p in self.raw_query.split("&") if p and unquote(p.partition("=")[0]) != name]
        return "&".join(pairs)


# The signing schemes, as `Caller.scheme` names them.
OSS_V4, OSS_V1, AWS_V4, AWS_V2 = "OSS4-HMAC-SHA256", "OSS V1", "AWS4-HMAC-SHA256", "AWS V2"


@dataclass(frozen=True)
class Caller:
    principal: Principal | None          # None: an anonymous request
    dialect: str                         # "oss" or "s3": which header names the client speaks
    scheme: str = ""                     # how the request was signed (OSS_V4, ...); "" when anonymous


def _resolve(auth: Authenticator, access_key_id: str, token: str | None) -> tuple[str, Principal]:
    try:
        return auth.resolve_key(access_key_id, token or None)
    except ApiError as err:
        if "Expired" in err.code:
            raise ApiError("SecurityTokenExpired", "The security token you provided has expired.", 403) from None
        if err.code.startswith("InvalidAccessKeyId"):
            raise ApiError("InvalidAccessKeyId", f"The OSS Access Key Id you provided does not exist in our "
                           f"records: {access_key_id}.", 403) from None
        raise ApiError("InvalidSecurityToken", f"The security token you provided is invalid ({err.code}).",
                       403) from None


def _check_skew(signed_at: float) -> None:
    if abs(time.time() - signed_at) > MAX_SKEW_SECONDS:
        raise ApiError("RequestTimeTooSkewed", "The difference between the request time and the current time is "
                       "too large (more than 15 minutes). Check the client's clock.", 403)


def _check_expiry(expires_at: float) -> None:
    if time.time() > expires_at:
        raise access_denied("Request has expired.")


def _http_date(value: str | None) -> float:
    try:
        return parsedate_to_datetime(value or "").timestamp()
    except (TypeError, ValueError):
        raise access_denied(f"The Date header is missing or not an HTTP date: {value!r}.") from None


def _iso_basic(value: str | None) -> float:
    try:
        return datetime.strptime(value or "", "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise access_denied(f"The signing time is missing or malformed: {value!r}.") from None


def _fields(authorization: str) -> dict[str, str]:
    """`Credential=..., SignedHeaders=..., Signature=...` (commas with or without spaces)."""
    parts = authorization.split(" ", 1)[1] if " " in authorization else ""
    return {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in re.split(r",\s*", parts)) if k}


def _same(expected: str, given: str, scheme: str) -> None:
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise signature_mismatch(scheme)


def _security_token(req: SignedRequest) -> str | None:
    return (req.header("x-oss-security-token") or req.header("security-token") or req.header("x-amz-security-token")
            or req.query.get("security-token") or req.query.get("x-oss-security-token")
            or req.query.get("X-Amz-Security-Token"))


def _oss_signing_context(req: SignedRequest, url: str) -> SigningContext:
    http = HttpRequest(req.method, url, headers=dict(req.headers))
    ctx = SigningContext(bucket=req.bucket, key=req.key or None, request=http)
    ctx.sub_resource = OSS2_SUBRESOURCES
    return ctx


# -- OSS V4 ------------------------------------------------------------------------------------
def _oss_v4(auth: Authenticator, req: SignedRequest, credential: str, additional: str, signature: str,
            signed_at: str, query_auth: bool) -> Principal:
    try:
        access_key_id, date, region, product, _ = credential.split("/")
    except ValueError:
        raise access_denied(f"The credential scope is malformed: {credential!r}.") from None
    secret, principal = _resolve(auth, access_key_id, _security_token(req))
    query = req.query_without("x-oss-signature") if query_auth else req.raw_query
    ctx = _oss_signing_context(req, f"http://{req.host}{req.raw_path}?{query}")
    signer = SignerV4()
    extra = signer._common_additional_headers(ctx.request, {h for h in additional.split(";") if h})
    canonical = signer._calc_canonical_request(signing_ctx=ctx, additional_headers=extra)
    scope = signer._build_scope(date=date, region=region, product=product)
    string_to_sign = signer._calc_string_to_sign(signed_at, scope, canonical)
    _same(signer._calc_signature(secret, date, region, product, string_to_sign), signature, "OSS4-HMAC-SHA256")
    return principal


def _oss_v4_header(auth: Authenticator, req: SignedRequest, authorization: str) -> Principal:
    f = _fields(authorization)
    signed_at = req.header("x-oss-date") or ""
    principal = _oss_v4(auth, req, f.get("Credential", ""), f.get("AdditionalHeaders", ""), f.get("Signature", ""),
                        signed_at, query_auth=False)
    _check_skew(_iso_basic(signed_at))
    return principal


def oss_v4_region(req: SignedRequest) -> tuple[str, bool]:
    """(the region of an OSS V4 request's credential scope, whether it is a presigned URL's)."""
    authorization = req.header("authorization") or ""
    if authorization.startswith("OSS4-HMAC-SHA256 "):
        credential, presigned = _fields(authorization).get("Credential", ""), False
    else:
        credential, presigned = req.query.get("x-oss-credential", ""), True
    parts = credential.split("/")
    return (parts[2] if len(parts) == 5 else ""), presigned


def _oss_v4_query(auth: Authenticator, req: SignedRequest) -> Principal:
    q = req.query
    signed_at = q.get("x-oss-date", "")
    principal = _oss_v4(auth, req, q.get("x-oss-credential", ""), q.get("x-oss-additional-headers", ""),
                        q.get("x-oss-signature", ""), signed_at, query_auth=True)
    _check_expiry(_iso_basic(signed_at) + int(q.get("x-oss-expires") or 0))
    return principal


# -- OSS V1 (oss2, ossfs) ----------------------------------------------------------------------
def _oss_v1(auth: Authenticator, req: SignedRequest, access_key_id: str, signature: str,
            date: str | None) -> Principal:
    secret, principal = _resolve(auth, access_key_id, _security_token(req))
    ctx = _oss_signing_context(req, f"http://{req.host}{req.raw_path}?{req.raw_query}")
    signer = SignerV1()
    string_to_sign = signer._calc_string_to_sign(signing_ctx=ctx, date=date)
    _same(signer._calc_signature(secret, string_to_sign), signature, "OSS V1")
    return principal


def _oss_v1_header(auth: Authenticator, req: SignedRequest, authorization: str) -> Principal:
    access_key_id, _, signature = authorization[len("OSS "):].strip().rpartition(":")
    principal = _oss_v1(auth, req, access_key_id, signature, None)
    _check_skew(_http_date(req.header("x-oss-date") or req.header("date")))
    return principal


def _oss_v1_query(auth: Authenticator, req: SignedRequest) -> Principal:
    q = req.query
    expires = q.get("Expires", "")
    principal = _oss_v1(auth, req, q.get("OSSAccessKeyId", ""), q.get("Signature", ""), expires)
    _check_expiry(float(expires) if expires.isdigit() else 0)
    return principal


# -- AWS SigV4 (boto3, s3fs sigv4) -------------------------------------------------------------
class _ExpectedSigV4(S3SigV4Auth):
    """botocore's S3 SigV4 signer, given the client's declared payload hash instead of a body."""

    def __init__(self, credentials: Credentials, service: str, region: str, payload_hash: str) -> None:
        super().__init__(credentials, service, region)
        self._payload_hash = payload_hash

    def payload(self, request: AWSRequest) -> str:
        return self._payload_hash


def _aws_v4(auth: Authenticator, req: SignedRequest, credential: str, signed_headers: str, signature: str,
            amz_date: str, query: str, payload_hash: str) -> Principal:
    try:
        access_key_id, _date, region, service, _ = credential.split("/")
    except ValueError:
        raise access_denied(f"The credential scope is malformed: {credential!r}.") from None
    secret, principal = _resolve(auth, access_key_id, _security_token(req))
    headers = HTTPHeaders()
    for name in signed_headers.split(";"):
        for k, v in req.headers:
            if k.lower() == name:
                headers[name] = v
    # AWS canonicalizes the query from decoded pairs (s3fs sends `prefix=a/` unencoded; botocore
    # sends `prefix=a%2F`): botocore's params form re-encodes them as the signer did.
    params = [(unquote(k), unquote(v)) for k, _, v in (p.partition("=") for p in query.split("&") if p)]
    request = AWSRequest(method=req.method, url=f"http://{req.host}{req.raw_path}", headers=headers,
                         params=params)
    request.context["timestamp"] = amz_date
    signer = _ExpectedSigV4(Credentials(access_key_id, secret), service, region, payload_hash)
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    _same(signer.signature(string_to_sign, request), signature, "AWS4-HMAC-SHA256")
    return principal


def _aws_v4_header(auth: Authenticator, req: SignedRequest, authorization: str) -> Principal:
    f = _fields(authorization)
    amz_date = req.header("x-amz-date") or ""
    if not amz_date:
        amz_date = datetime.fromtimestamp(_http_date(req.header("date")), timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    payload_hash = req.header("x-amz-content-sha256") or "UNSIGNED-PAYLOAD"
    principal = _aws_v4(auth, req, f.get("Credential", ""), f.get("SignedHeaders", ""), f.get("Signature", ""),
                        amz_date, req.raw_query, payload_hash)
    _check_skew(_iso_basic(amz_date))
    return principal


def _aws_v4_query(auth: Authenticator, req: SignedRequest) -> Principal:
    q = req.query
    amz_date = q.get("X-Amz-Date", "")
    principal = _aws_v4(auth, req, q.get("X-Amz-Credential", ""), q.get("X-Amz-SignedHeaders", "host"),
                        q.get("X-Amz-Signature", ""), amz_date, req.query_without("X-Amz-Signature"),
                        "UNSIGNED-PAYLOAD")
    _check_expiry(_iso_basic(amz_date) + int(q.get("X-Amz-Expires") or 0))
    return principal


# -- AWS SigV2 (s3fs sigv2) --------------------------------------------------------------------
class _ExpectedSigV2(HmacV1Auth):
    """botocore's HMAC-SHA1 signer, with the date the client signed instead of the current one."""

    def __init__(self, credentials: Credentials, date: str) -> None:
        super().__init__(credentials)
        self._date = date

    def _get_date(self) -> str:
        return self._date


def _aws_v2(auth: Authenticator, req: SignedRequest, access_key_id: str, signature: str, date: str) -> Principal:
    token = req.header("x-amz-security-token")
    secret, principal = _resolve(auth, access_key_id, token or _security_token(req))
    headers = HTTPHeaders()
    for k, v in req.headers:
        headers[k] = v
    # The canonical resource always names the bucket, with a slash after it even for a bucket
    # request sent as `/bucket` (botocore signs `/bucket/`), whatever the addressing style.
    auth_path = None
    if req.bucket:
        rest = req.raw_path[1:] if req.virtual_hosted else req.raw_path[1:].partition("/")[2]
        auth_path = f"/{req.bucket}/{rest}"
    signer = _ExpectedSigV2(Credentials(access_key_id, secret, token), date)
    split = urlsplit(f"http://{req.host}{req.raw_path}?{req.raw_query}")
    _same(signer.get_signature(req.method, split, headers, auth_path=auth_path), signature, "AWS HMAC-SHA1")
    return principal


def _aws_v2_header(auth: Authenticator, req: SignedRequest, authorization: str) -> Principal:
    access_key_id, _, signature = authorization[len("AWS "):].strip().rpartition(":")
    date = req.header("date") or ""
    principal = _aws_v2(auth, req, access_key_id, signature, date)
    _check_skew(_http_date(req.header("x-amz-date") or date))
    return principal


def _aws_v2_query(auth: Authenticator, req: SignedRequest) -> Principal:
    q = req.query
    expires = q.get("Expires", "")
    principal = _aws_v2(auth, req, q.get("AWSAccessKeyId", ""), q.get("Signature", ""), expires)
    _check_expiry(float(expires) if expires.isdigit() else 0)
    return principal


def authenticate(auth: Authenticator, req: SignedRequest) -> Caller:
    """The caller of a request, or the OSS error for a bad signature, key or token."""
    authorization = req.header("authorization") or ""
    q = req.query
    if authorization.startswith("OSS4-HMAC-SHA256 "):
        return Caller(_oss_v4_header(auth, req, authorization), "oss", OSS_V4)
    if authorization.startswith("OSS "):
        return Caller(_oss_v1_header(auth, req, authorization), "oss", OSS_V1)
    if authorization.startswith("AWS4-HMAC-SHA256 "):
        return Caller(_aws_v4_header(auth, req, authorization), "s3", AWS_V4)
    if authorization.startswith("AWS "):
        return Caller(_aws_v2_header(auth, req, authorization), "s3", AWS_V2)
    if authorization:
        raise ApiError("InvalidArgument", "Authorization header is invalid: unknown signing scheme.", 400)
    if q.get("x-oss-signature-version") == "OSS4-HMAC-SHA256":
        return Caller(_oss_v4_query(auth, req), "oss", OSS_V4)
    if "OSSAccessKeyId" in q:
        return Caller(_oss_v1_query(auth, req), "oss", OSS_V1)
    if "X-Amz-Algorithm" in q:
        return Caller(_aws_v4_query(auth, req), "s3", AWS_V4)
    if "AWSAccessKeyId" in q:
        return Caller(_aws_v2_query(auth, req), "s3", AWS_V2)
    s3 = any(k.lower().startswith("x-amz-") for k, _ in req.headers)
    return Caller(None, "s3" if s3 else "oss")
