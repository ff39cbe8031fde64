"""What the training agent asks of the cloud from inside an instance, and the lease built on it.

Standard library only, like the agent (which imports this file from its own directory):

- `Metadata`: the instance metadata service with ECS's token flow (PUT /latest/api/token, then
  the token on every read; 404 is "no such entry").
- `RoleCredentials`: the instance RAM role's STS credentials from the metadata service, renewed
  before they expire. `StaticCredentials` for an AccessKey (tests, or a host that is no instance).
- `OssClient`: PutObject / GetObject / DeleteObject with OSS signature V1 (path style on an IP
  endpoint, virtual-hosted otherwise), `x-oss-forbid-overwrite` on puts.
- `RpcClient`: RPC API calls (ECS, ESS, CloudMonitor) with the RPC signature V1 (HMAC-SHA1), JSON
  answers. `put_custom_event` reports a CloudMonitor custom event; `post_webhook` a JSON POST.
- Both clients retry what a busy cloud answers (throttling: `Throttling.*`, OSS's 429; every 5xx) and
  a request that did not get through (a refused or timed-out connection), with jittered backoff,
  signed anew each time; each retry is logged, and so is giving up (`retried`).
- `Lease`: one trainer per output directory. A lease object on the bucket names the instance
  that may train and a heartbeat. It is created with `x-oss-forbid-overwrite: true`, so of two
  instances that try at once one gets it and the other OSS's 409 `FileAlreadyExists`; it is taken
  over when its holder no longer exists (DescribeInstances) or its heartbeat is older than the
  expiry; its holder renews it and deletes it when it hands over. A successor whose trainer has
  loaded announces itself beside it (`<key>.next`), and a holder on its way out hands over then.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, TypeVar

LOG = logging.getLogger("train-agent")

METADATA_URL = "http://100.100.100.200"
TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
TIMEOUT = 5.0
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
            self._expires = calendar.timegm(time.strptime(record["Expiration"], "%Y-%m-%dT%H:%M:%SZ"))
        return self._keys


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


class OssClient:
    """The few object calls the lease needs, signed with OSS signature V1."""

    def __init__(self, endpoint: str, bucket: str, credentials: StaticCredentials | RoleCredentials,
                 timeout: float = TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        self.scheme, self.host, self.bucket = parts.scheme, parts.netloc, bucket
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
        headers = {"Date": formatdate(usegmt=True), **(headers or {})}
        if body:
            headers["Content-Type"] = "application/octet-stream"
            headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
        if keys.security_token:
            headers["x-oss-security-token"] = keys.security_token
        oss_headers = "".join(f"{name.lower()}:{value.strip()}\n" for name, value in
                              sorted(headers.items(), key=lambda item: item[0].lower())
                              if name.lower().startswith("x-oss-"))
        to_sign = "\n".join([method, headers.get("Content-MD5", ""), headers.get("Content-Type", ""), headers["Date"],
                             oss_headers + f"/{self.bucket}/{key}"])
        signature = base64.b64encode(hmac.new(keys.access_key_secret.encode(), to_sign.encode(),
                                              hashlib.sha1).digest()).decode()
        headers["Authorization"] = f"OSS {keys.access_key_id}:{signature}"
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
        status, _headers, body = self.request("GET", key)
        if status == 404:
            return None
        self.check(status, body)
        return body

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
                 timeout: float = TIMEOUT) -> None:
        self.endpoint = endpoint if "://" in endpoint else f"https://{endpoint}"
        self.version = version
        self.credentials = credentials
        self.timeout = timeout

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        """The action's answer; a transient error is retried (`retried`), each attempt signed anew."""
        return retried(f"{action}", lambda: self._call_once(action, params))

    def _call_once(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        keys = self.credentials.get()
        query = {"Action": action, "Version": self.version, "Format": "JSON", "AccessKeyId": keys.access_key_id,
                 "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": secrets.token_hex(16),
                 "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
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


GROUP_TAG = "acs:autoscaling:scalingGroupId"


def instance_tags(ecs: RpcClient, region: str, instance_id: str) -> dict[str, str]:
    """An instance's tags (DescribeInstances)."""
    answer = ecs.call("DescribeInstances", RegionId=region, InstanceIds=json.dumps([instance_id]))
    return {tag.get("TagKey"): tag.get("TagValue") for item in answer.get("Instances", {}).get("Instance", [])
            for tag in item.get("Tags", {}).get("Tag", [])}


def scaling_group_of(ecs: RpcClient, region: str, instance_id: str) -> str | None:
    """The scaling group that launched an instance (ESS tags its instances), None for another instance."""
    return instance_tags(ecs, region, instance_id).get(GROUP_TAG)


class ScaleIn:
    """This instance's side of the group's SCALE_IN lifecycle hooks (ESS 2022-02-22)."""

    def __init__(self, ess: RpcClient, region: str, group_id: str, instance_id: str) -> None:
        self.ess, self.region, self.group_id, self.instance_id = ess, region, group_id, instance_id

    def waiting(self) -> bool:
        """Whether the group holds this instance in Removing:Wait (it removes it once the action completes)."""
        answer = self.ess.call("DescribeScalingInstances", RegionId=self.region, ScalingGroupId=self.group_id,
                               **{"InstanceIds.1": self.instance_id})
        return any(row.get("LifecycleState") == "Removing:Wait" for row in answer.get("ScalingInstances", []))

    def pending_actions(self) -> list[tuple[str, str]]:
        """(hook id, token) of each pending lifecycle action that holds this instance."""
        found = []
        activities = self.ess.call("DescribeScalingActivities", RegionId=self.region, ScalingGroupId=self.group_id,
                                   StatusCode="InProgress").get("ScalingActivities", [])
        for activity in activities:
            actions = self.ess.call("DescribeLifecycleActions", RegionId=self.region,
                                    ScalingActivityId=activity["ScalingActivityId"], LifecycleActionStatus="Pending")
            found += [(item["LifecycleHookId"], item["LifecycleActionToken"])
                      for item in actions.get("LifecycleActions", [])
                      if self.instance_id in item.get("InstanceIds", [])]
        return found

    def complete(self, result: str = "CONTINUE") -> int:
        """Let the removal go on; the number of actions completed."""
        actions = self.pending_actions()
        for hook_id, token in actions:
            self.ess.call("CompleteLifecycleAction", RegionId=self.region, LifecycleHookId=hook_id,
                          LifecycleActionToken=token, LifecycleActionResult=result)
        return len(actions)

    def scale_to_zero(self) -> None:
        """Set the group's desired capacity to 0: it removes its instances (this one too)."""
        self.ess.call("ModifyScalingGroup", RegionId=self.region, ScalingGroupId=self.group_id, DesiredCapacity=0)


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


# --------------------------------------------------------------------------- the lease

@dataclass
class LeaseState:
    """What the lease object says."""

    holder: str
    heartbeat: float
    acquired: float

    @classmethod
    def parse(cls, body: bytes) -> LeaseState | None:
        try:
            raw = json.loads(body)
            return cls(str(raw["holder"]), float(raw["heartbeat"]), float(raw["acquired"]))
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: treated as expired

    def dump(self) -> bytes:
        return json.dumps({"holder": self.holder, "heartbeat": self.heartbeat, "acquired": self.acquired,
                           "host": socket.gethostname()}).encode()


class Lease:
    """One trainer per output directory (see the module's docstring)."""

    def __init__(self, oss: OssClient, key: str, holder: str, expiry: float,
                 holder_exists: Callable[[str], bool]) -> None:
        self.oss, self.key, self.holder, self.expiry = oss, key, holder, expiry
        self.holder_exists = holder_exists
        self.acquired_at: float | None = None

    def _create(self) -> bool:
        now = time.time()
        try:
            self.oss.put(self.key, LeaseState(self.holder, now, now).dump(), forbid_overwrite=True)
        except CloudError as exc:
            if exc.status == 409 and exc.code == "FileAlreadyExists":
                return False
            raise
        self.acquired_at = now
        return True

    def why_free(self, state: LeaseState | None) -> str | None:
        """Why a lease held by someone else may be taken over, or None while its holder may train."""
        if state is None:
            return "the lease object is unreadable"
        age = time.time() - state.heartbeat
        if age > self.expiry:
            return f"its heartbeat is {age:.0f}s old (expiry {self.expiry:g}s)"
        try:
            if not self.holder_exists(state.holder):
                return f"{state.holder} no longer exists"
        except (CloudError, OSError, ValueError) as exc:
            LOG.warning("cannot tell whether %s still exists (%s); waiting for its heartbeat to expire",
                        state.holder, exc)
        return None

    def try_acquire(self) -> tuple[bool, str]:
        """(True, how) when this instance now holds the lease, else (False, who holds it and why it waits)."""
        if self._create():
            return True, "created the lease"
        body = self.oss.get(self.key)
        if body is None:
            return (True, "created the lease") if self._create() else (False, "another instance just took the lease")
        state = LeaseState.parse(body)
        if state is not None and state.holder == self.holder:
            self.acquired_at = state.acquired
            return (True, "this instance already held the lease") if self.renew() else (False, "the lease moved")
        reason = self.why_free(state)
        if reason is None:
            age = time.time() - state.heartbeat if state else 0.0
            return False, f"{state.holder if state else '?'} holds the lease (heartbeat {age:.0f}s ago)"
        # Take over: delete the stale object only if it is still the one we judged, then race to create.
        if self.oss.get(self.key) != body:
            return False, "the lease changed while it was being taken over"
        self.oss.delete(self.key)
        if self._create():
            return True, f"took the lease over from {state.holder if state else '?'}: {reason}"
        return False, "another instance took the lease over first"

    def state(self) -> LeaseState | None:
        """What the lease object says now (None: there is none, or it is unreadable)."""
        return self._read(self.key)

    def _read(self, key: str) -> LeaseState | None:
        body = self.oss.get(key)
        return LeaseState.parse(body) if body is not None else None

    def renew(self) -> bool:
        """Refresh the heartbeat; False when another instance holds the lease now."""
        state = self.state()
        if state is None or state.holder != self.holder:
            return False
        state.heartbeat = time.time()
        self.oss.put(self.key, state.dump())
        return True

    def holder_now(self) -> str | None:
        state = self.state()
        return state.holder if state else None

    def release(self) -> None:
        """Give the lease back (only if this instance still holds it)."""
        if self.holder_now() == self.holder:
            self.oss.delete(self.key)
        self.acquired_at = None

    # A warm successor: an instance whose trainer has loaded and waits for the lease says so in
    # `<key>.next` (and renews it while it waits), so that the holder, on its way out, trains on
    # until then and hands over at once.

    @property
    def successor_key(self) -> str:
        return self.key + ".next"

    def announce(self) -> None:
        """Say that this instance has loaded and waits for the lease."""
        now = time.time()
        self.oss.put(self.successor_key, LeaseState(self.holder, now, now).dump())

    def successor(self) -> str | None:
        """The instance other than this one that has loaded and waits for the lease, if it said so
        within the expiry."""
        state = self._read(self.successor_key)
        if state is None or state.holder == self.holder or time.time() - state.heartbeat > self.expiry:
            return None
        return state.holder

    def withdraw(self) -> None:
        """Take back this instance's announcement (it holds the lease now, or waits no more)."""
        state = self._read(self.successor_key)
        if state is not None and state.holder == self.holder:
            self.oss.delete(self.successor_key)
