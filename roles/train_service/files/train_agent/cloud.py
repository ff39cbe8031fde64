"""What the training agent asks of the cloud from inside an instance (the lease built on it is lease.py's).

Standard library only, like the rest of the agent:

- `Metadata`: the instance metadata service with ECS's token flow (PUT /latest/api/token, then
  the token on every read; 404 is "no such entry").
- `RoleCredentials`: the instance RAM role's STS credentials from the metadata service, renewed
  before they expire. `StaticCredentials` for an AccessKey (tests, or a host that is no instance).
- `OssClient`: PutObject / GetObject / DeleteObject with OSS signature V4 (`OSS4-HMAC-SHA256`, the
  bucket's region in the scope; OSS refuses V1 on every bucket created since 2025-09-01), path style
  on an IP endpoint and virtual-hosted otherwise, `x-oss-forbid-overwrite` on puts.
- `RpcClient`: RPC API calls (ECS, ESS, CloudMonitor) with the RPC signature V1 (HMAC-SHA1), JSON
  answers. `put_custom_event` reports a CloudMonitor custom event; `post_webhook` a JSON POST.
- The agent's one retry policy (`retried`, in both clients' one call each): what a busy cloud answers
  (throttling: `Throttling.*`, OSS's 429; every 5xx) and a request that did not get through (a refused
  or timed-out connection) is tried again with jittered backoff, signed anew each time; anything else
  (a 403, a 404, a 409) is not. Each retry is logged, and so is giving up. Nothing above the clients
  retries a call again: what still fails is the caller's to report.
"""

from __future__ import annotations

import base64
import calendar
import email.utils
import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, TypeVar

from .logs import LOG
from .oss_signing import oss_v4_authorization

METADATA_URL = "http://100.100.100.200"
TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
TIMEOUT = 5.0
# ECS's times (RPC timestamps, STS expirations, spot/termination-time): 2026-12-01T15:00:00Z, UTC.
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Renew role credentials this long before they expire (ECS refreshes them well before that).
CREDENTIAL_MARGIN = 300.0


class CloudError(Exception):
    """An API answered with an error (status, code and message as the cloud gave them)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


T = TypeVar("T")
# Attempts of one call, and the backoff between them: the n-th wait is drawn from [b/2, b] with
# b = min(RETRY_CAP, RETRY_BASE * 2**n) (0.5-1 s, 1-2 s, 2-4 s, 2-4 s: under 11 s in all).
RETRY_ATTEMPTS = 5
RETRY_BASE = 0.5
RETRY_CAP = 4.0


def transient(exc: Exception) -> bool:
    """Whether another try may succeed: throttling, a 5xx, OSS's 429, or a request that did not get through."""
    if isinstance(exc, CloudError):
        return exc.status >= 500 or exc.status == 429 or exc.code.startswith("Throttling")
    return isinstance(exc, OSError)  # refused, reset or timed out (urllib's URLError is one)


def retried(what: str, call: Callable[[], T], attempts: int = RETRY_ATTEMPTS,
            sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, tried again after a transient error (`transient`) up to `attempts` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except (CloudError, OSError) as exc:
            if not transient(exc):
                raise
            if attempt == attempts:
                LOG.error("%s: %s; giving up after %d attempts", what, exc, attempts)
                raise
            bound = min(RETRY_CAP, RETRY_BASE * 2 ** attempt)
            delay = random.uniform(bound / 2, bound)
            LOG.warning("%s: %s; retry %d/%d in %.1fs", what, exc, attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


# --------------------------------------------------------------------------- metadata and credentials

class Metadata:
    """The instance metadata service (token flow; a refused token is renewed once)."""

    def __init__(self, base_url: str = METADATA_URL, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token: str | None = None

    def get(self, path: str) -> str | None:
        """The entry at `path` (under /latest/meta-data/ unless it starts with /), None on 404."""
        url = self.base_url + (path if path.startswith("/") else f"/latest/meta-data/{path}")
        for _attempt in range(2):
            if self._token is None:
                request = urllib.request.Request(self.base_url + "/latest/api/token", method="PUT",
                                                 headers={TOKEN_TTL_HEADER: "21600"})
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    self._token = response.read().decode().strip()
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers={TOKEN_HEADER: self._token}),
                                            timeout=self.timeout) as response:
                    return response.read().decode().strip()
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                if exc.code != 401:
                    raise
                self._token = None  # expired: get a new one
        return None


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None


class StaticCredentials:
    def __init__(self, keys: Keys) -> None:
        self._keys = keys

    def get(self) -> Keys:
        return self._keys


class RoleCredentials:
    """The instance RAM role's STS credentials, as the metadata service hands them out."""

    def __init__(self, metadata: Metadata) -> None:
        self.metadata = metadata
        self._keys: Keys | None = None
        self._expires = 0.0

    def get(self) -> Keys:
        if self._keys is None or time.time() > self._expires - CREDENTIAL_MARGIN:
            role = self.metadata.get("ram/security-credentials/")
            if not role:
                raise CloudError(0, "NoRamRole", "the instance has no RAM role; attach the training role to it")
            record = json.loads(self.metadata.get(f"ram/security-credentials/{role.splitlines()[0]}") or "{}")
            self._keys = Keys(record["AccessKeyId"], record["AccessKeySecret"], record["SecurityToken"])
            self._expires = utc_epoch(record["Expiration"])
        return self._keys


def utc_epoch(text: str) -> float:
    """Epoch seconds of a time as ECS and its metadata service write it (2026-12-01T15:00:00Z, UTC); ValueError
    for another form."""
    return float(calendar.timegm(time.strptime(text.strip(), UTC_FORMAT)))


def _send(request: urllib.request.Request, timeout: float) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# --------------------------------------------------------------------------- OSS

def _xml_field(body: bytes, name: str) -> str:
    text = body.decode("utf-8", "replace")
    start, end = text.find(f"<{name}>"), text.find(f"</{name}>")
    return text[start + len(name) + 2:end] if start >= 0 and end > start else ""


def object_age(headers: dict[str, str]) -> float | None:
    """Seconds from an object's Last-Modified to the response's Date (the bucket's clock), None without both."""
    found = {name.lower(): value for name, value in headers.items()}
    try:
        answered = email.utils.parsedate_to_datetime(found["date"])
        modified = email.utils.parsedate_to_datetime(found["last-modified"])
    except (KeyError, TypeError, ValueError):
        return None
    return max((answered - modified).total_seconds(), 0.0)


class OssClient:
    """The few object calls the lease needs, signed with OSS signature V4 for the bucket's `region`."""

    def __init__(self, endpoint: str, bucket: str, credentials: StaticCredentials | RoleCredentials, region: str,
                 timeout: float = TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        self.scheme, self.host, self.bucket, self.region = parts.scheme, parts.netloc, bucket, region
        self.credentials = credentials
        self.timeout = timeout
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host)
            self.path_style = True
        except ValueError:
            self.path_style = host == "localhost"

    def url(self, key: str) -> str:
        quoted = urllib.parse.quote(key, safe="/~")
        if self.path_style:
            return f"{self.scheme}://{self.host}/{self.bucket}/{quoted}"
        return f"{self.scheme}://{self.bucket}.{self.host}/{quoted}"

    def request(self, method: str, key: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """The answer (status, headers, body); a transient error is retried (`retried`) and, when every
        attempt got one, raised as CloudError."""
        def once() -> tuple[int, dict[str, str], bytes]:
            answer = self._send_signed(method, key, body, headers)
            if answer[0] >= 500 or answer[0] == 429:
                self.check(answer[0], answer[2])
            return answer

        return retried(f"OSS {method} {key}", once)

    def _send_signed(self, method: str, key: str, body: bytes,
                     headers: dict[str, str] | None) -> tuple[int, dict[str, str], bytes]:
        keys = self.credentials.get()
        now = time.gmtime()
        headers = {"Date": formatdate(calendar.timegm(now), usegmt=True),
                   "x-oss-date": time.strftime("%Y%m%dT%H%M%SZ", now), "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
                   **(headers or {})}
        if body:
            headers["Content-Type"] = "application/octet-stream"
            headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
        if keys.security_token:
            headers["x-oss-security-token"] = keys.security_token
        headers["Authorization"] = oss_v4_authorization(keys, self.region, method, self.bucket, key, headers, now)
        request = urllib.request.Request(self.url(key), data=body if method == "PUT" else None, method=method,
                                         headers=headers)
        return _send(request, self.timeout)

    def check(self, status: int, body: bytes) -> None:
        if status >= 300:
            message = _xml_field(body, "Message") or body[:200].decode("utf-8", "replace")
            raise CloudError(status, _xml_field(body, "Code") or "HTTP", message)

    def put(self, key: str, data: bytes, forbid_overwrite: bool = False) -> None:
        headers = {"x-oss-forbid-overwrite": "true"} if forbid_overwrite else {}
        self.check(*self.request("PUT", key, data, headers)[::2])

    def get(self, key: str) -> bytes | None:
        return self.get_aged(key)[0]

    def get_aged(self, key: str) -> tuple[bytes | None, float | None]:
        """The object (None on 404) and its age by the bucket's clock: the response's Date less the object's
        Last-Modified, both OSS's (whole seconds), so that no two machines' clocks have to agree; None where the
        answer lacks either header."""
        status, headers, body = self.request("GET", key)
        if status == 404:
            return None, None
        self.check(status, body)
        return body, object_age(headers)

    def delete(self, key: str) -> None:
        status, _headers, body = self.request("DELETE", key)
        if status != 404:
            self.check(status, body)


# --------------------------------------------------------------------------- RPC APIs

def _percent(value: str) -> str:
    return urllib.parse.quote(value, safe="~")


class RpcClient:
    """Calls of one RPC product (ECS 2014-05-26, ESS 2022-02-22, ...) with signature V1."""

    def __init__(self, endpoint: str, version: str, credentials: StaticCredentials | RoleCredentials,
                 timeout: float = TIMEOUT, attempts: int = RETRY_ATTEMPTS) -> None:
        self.endpoint = endpoint if "://" in endpoint else f"https://{endpoint}"
        self.version = version
        self.credentials = credentials
        self.timeout = timeout
        self.attempts = attempts

    def patient(self, attempts: int) -> RpcClient:
        """The same client, trying a transient error `attempts` times in all (a call that must get through)."""
        return RpcClient(self.endpoint, self.version, self.credentials, self.timeout, attempts)

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        """The action's answer; a transient error is retried (`retried`), each attempt signed anew."""
        return retried(f"{action}", lambda: self._call_once(action, params), self.attempts)

    def _call_once(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        keys = self.credentials.get()
        query = {"Action": action, "Version": self.version, "Format": "JSON", "AccessKeyId": keys.access_key_id,
                 "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": secrets.token_hex(16),
                 "Timestamp": time.strftime(UTC_FORMAT, time.gmtime()),
                 **{name: str(value) for name, value in params.items() if value is not None}}
        if keys.security_token:
            query["SecurityToken"] = keys.security_token
        canonical = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(query.items()))
        to_sign = f"POST&{_percent('/')}&{_percent(canonical)}"
        query["Signature"] = base64.b64encode(hmac.new(f"{keys.access_key_secret}&".encode(), to_sign.encode(),
                                                       hashlib.sha1).digest()).decode()
        url = f"{self.endpoint.rstrip('/')}/?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}"
        status, _headers, body = _send(urllib.request.Request(url, data=b"", method="POST"), self.timeout)
        try:
            answer = json.loads(body or b"{}")
        except json.JSONDecodeError:
            answer = {"Code": "HTTP", "Message": body[:200].decode("utf-8", "replace")}
        if status >= 300:
            raise CloudError(status, answer.get("Code", "HTTP"), answer.get("Message", ""))
        return answer


def instance_exists(ecs: RpcClient, region: str, instance_id: str) -> bool:
    """Whether an instance is still there and not stopped (DescribeInstances; released ones are gone)."""
    answer = ecs.call("DescribeInstances", RegionId=region, InstanceIds=json.dumps([instance_id]))
    found = answer.get("Instances", {}).get("Instance", [])
    return any(item.get("Status") not in ("Stopped", "Stopping") for item in found)


# --------------------------------------------------------------------------- telling people

def put_custom_event(cms: RpcClient, name: str, content: str, group_id: str | None = None) -> None:
    """Report one CloudMonitor custom event (2019-01-01 PutCustomEvent), timed now (Unix milliseconds).

    CloudMonitor answers errors with an HTTP error or, for some, HTTP 200 and a Code other than 200."""
    answer = cms.call("PutCustomEvent", **{"EventInfo.1.EventName": name, "EventInfo.1.Content": content,
                                           "EventInfo.1.Time": str(int(time.time() * 1000)),
                                           "EventInfo.1.GroupId": group_id})
    if str(answer.get("Code", "200")) != "200":
        raise CloudError(200, str(answer.get("Code")), str(answer.get("Message", "")))


def post_webhook(url: str, payload: dict[str, Any], timeout: float = TIMEOUT) -> None:
    """POST `payload` as JSON (a DingTalk robot reads its `msgtype` and `text`); OSError or CloudError
    when the URL cannot be reached or answers with an error."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise CloudError(0, "BadWebhook", "the webhook is not an http(s) URL")
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    status, _headers, body = _send(request, timeout)
    if status >= 300:
        raise CloudError(status, "HTTP", body[:200].decode("utf-8", "replace"))
    try:  # a DingTalk robot answers 200 with {"errcode": 310000, "errmsg": "..."} when it refuses
        answer = json.loads(body or b"{}")
    except json.JSONDecodeError:
        return
    if isinstance(answer, dict) and answer.get("errcode") not in (None, 0):
        raise CloudError(status, str(answer["errcode"]), str(answer.get("errmsg", "")))
