"""localcloud's endpoints answer any request, however malformed, with a 4xx and keep serving.

Each case is sent on a raw socket (no client library would send it), alone and then 200 of them in
parallel with good SDK calls; every one gets a 4xx with the code Alibaba's endpoints give, the good
calls all succeed meanwhile, and the daemon's log has one line per refusal, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pytest
from alibabacloud_ecs20140526 import models as ecs_models

from localcloud.daemon import ADMIN_TOKEN_FILE

from .test_auth import v1_signed


@dataclass(frozen=True)
class Case:
    name: str
    endpoint: str  # "rpc" or "oss"
    build: Callable[[Any], bytes]  # the raw request, from the localcloud fixture
    status: int | tuple[int, ...]
    code: str | None = None  # the error code in the body, where the endpoint gives one
    half_close: bool = False  # shut our side after sending: a body announced longer than sent


def http(method: str, target: str, headers: dict[str, str] | list[tuple[str, str]], body: bytes = b"",
         host: str = "localhost") -> bytes:
    items = headers.items() if isinstance(headers, dict) else headers
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items)
    return head.encode("latin-1", "surrogateescape") + b"\r\n" + body


def form(body: bytes, length: str | None = None) -> bytes:
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Content-Length": length if length is not None else str(len(body))}
    return http("POST", "/", headers, body)


def v1_post(lc: Any, params: dict[str, str], signature: str | None = None, key: tuple[str, str] | None = None,
            **replace: str) -> bytes:
    """A V1-signed POST (the signature over POST), with `signature` or fields put in after signing."""
    signed = v1_signed(params, *(key or (lc.access_key_id, lc.access_key_secret)))
    if signature is not None:
        signed["Signature"] = signature
    signed.update(replace)
    query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in signed.items())
    return http("POST", f"/?{query}", {"Content-Length": "0"})


def admin(route: str, token: str | None, body: bytes = b"{}") -> Callable[[Any], bytes]:
    def build(lc: Any) -> bytes:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if token is not None:
            headers["Authorization"] = "Bearer " + (
                (lc.state_dir / ADMIN_TOKEN_FILE).read_text().strip() if token == "good" else token)
        return http("POST", f"/_localcloud/{route}", headers, body)
    return build


def v3(signature: str, body: bytes = b"") -> Callable[[Any], bytes]:
    """A V3-signed call whose Authorization names the real key but carries `signature`."""
    def build(lc: Any) -> bytes:
        digest = hashlib.sha256(body).hexdigest()
        headers = {
            "x-acs-action": "DescribeRegions", "x-acs-version": "2014-05-26",
            "x-acs-date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": uuid.uuid4().hex, "x-acs-content-sha256": digest,
            "Authorization": f"ACS3-HMAC-SHA256 Credential={lc.access_key_id},"
                             "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;"
                             f"x-acs-signature-nonce;x-acs-version,Signature={signature}",
            "Content-Length": str(len(body)),
        }
        return http("POST", "/", headers, body)
    return build


DESCRIBE_REGIONS = {"Action": "DescribeRegions", "Version": "2014-05-26"}
CASES = [
    # -- bodies and their lengths
    Case("form body not UTF-8", "rpc", lambda lc: form(b"Action=DescribeRegions&Version=2014-05-26&x=\xff\xfe"),
         400, "InvalidParameter"),
    Case("Content-Length not a number", "rpc", lambda lc: form(b"x=1", "abc"), 400, "InvalidContentLength"),
    Case("Content-Length negative", "rpc", lambda lc: form(b"x=1", "-1"), 400, "InvalidContentLength"),
    Case("Content-Length in other digits", "rpc", lambda lc: form(b"x=1", "\u00b2"), 400, "InvalidContentLength"),
    Case("Content-Length of a terabyte", "rpc", lambda lc: form(b"x=1", "1000000000000"), 413,
         "RequestEntityTooLarge"),
    Case("a 20 MB body", "rpc", lambda lc: form(b"x=1", str(20 * 1024 * 1024)), 413, "RequestEntityTooLarge"),
    Case("body shorter than its length", "rpc", lambda lc: form(b"x=1", "100"), 400, "IncompleteBody",
         half_close=True),
    Case("chunked body", "rpc",
         lambda lc: http("POST", "/", {"Transfer-Encoding": "chunked"}, b"3\r\nx=1\r\n0\r\n\r\n"),
         411, "MissingContentLength"),
    # -- the HTTP layer
    Case("request line over 64 KiB", "rpc", lambda lc: http("GET", "/?" + "a" * 70000, {}), 414),
    Case("not HTTP at all", "rpc", lambda lc: b"HELLO THERE\r\n\r\n", 400),
    Case("header line over 64 KiB", "rpc", lambda lc: http("GET", "/", {"X-Big": "b" * 70000}), 431),
    Case("more than 100 headers", "rpc", lambda lc: http("GET", "/", [(f"X-H{i}", "1") for i in range(120)]), 431),
    Case("PUT on the RPC endpoint", "rpc", lambda lc: http("PUT", "/", {"Content-Length": "0"}), 405,
         "MethodNotAllowed"),
    Case("DELETE on the RPC endpoint", "rpc", lambda lc: http("DELETE", "/", {"Content-Length": "0"}), 405,
         "MethodNotAllowed"),
    # -- what the request asks for
    Case("no action", "rpc", lambda lc: http("GET", "/?Version=2014-05-26", {}), 400, "MissingAction"),
    Case("unknown version", "rpc", lambda lc: http("GET", "/?Action=DescribeRegions&Version=1999-01-01", {}), 400,
         "InvalidVersion"),
    Case("unknown action, unsigned: authentication first", "rpc",
         lambda lc: http("GET", "/?Action=NoSuchThing&Version=2014-05-26", {}), 400, "MissingSignature"),
    Case("unknown action, signed", "rpc",
         lambda lc: v1_post(lc, {"Action": "NoSuchThing", "Version": "2014-05-26"}), 404,
         "InvalidAction.NotFound"),
    Case("RegionId missing where required", "rpc",
         lambda lc: v1_post(lc, {"Action": "DescribeInstances", "Version": "2014-05-26"}), 400,
         "MissingParameter"),
    Case("RegionId of another region", "rpc",
         lambda lc: v1_post(lc, {"Action": "DescribeInstances", "Version": "2014-05-26", "RegionId": "us-west-1"}),
         404, "InvalidRegionId.NotFound"),
    Case("query not UTF-8 and badly escaped", "rpc", lambda lc: http("GET", "/?Action=%ff%fe&Version=%ZZ", {}), 400),
    # -- signatures and keys
    Case("V1 signature not ASCII", "rpc", lambda lc: v1_post(lc, DESCRIBE_REGIONS, "\u00e9t\u00e9"),
         400, "SignatureDoesNotMatch"),
    Case("V1 key unknown", "rpc", lambda lc: v1_post(lc, DESCRIBE_REGIONS, key=("LTAInothere", "x")),
         404, "InvalidAccessKeyId.NotFound"),
    Case("V1 security token not ASCII", "rpc",
         lambda lc: v1_post(lc, DESCRIBE_REGIONS, key=("STS.nothere", "x"), SecurityToken="\u2603"), 404,
         "InvalidAccessKeyId.NotFound"),
    Case("V3 signature not ASCII", "rpc", v3("\u00e9\u00e9\u00e9"), 400, "SignatureDoesNotMatch"),
    Case("V3 Authorization incomplete", "rpc",
         lambda lc: http("GET", "/", {"Authorization": "ACS3-HMAC-SHA256 nonsense", "x-acs-action": "DescribeRegions",
                                      "x-acs-version": "2014-05-26"}), 400, "IncompleteSignature"),
    # -- the admin routes
    Case("admin without a token", "rpc", admin("status", None), 401, "Unauthorized"),
    Case("admin token not ASCII", "rpc", admin("status", "t\u00f6ken\u2603".encode().decode("latin-1")), 401,
         "Unauthorized"),
    Case("admin body not JSON", "rpc", admin("spot", "good", b"{not json"), 400, "InvalidParameter"),
    Case("admin body a JSON list", "rpc", admin("spot", "good", b"[1, 2]"), 400, "InvalidParameter"),
    Case("admin arguments wrong", "rpc", admin("spot", "good", json.dumps({"zone": 5}).encode()), (400, 404)),
    Case("admin route unknown", "rpc", admin("no-such-route", "good"), (400, 404)),
    # -- the OSS endpoint
    Case("OSS Content-Length not a number", "oss",
         lambda lc: http("PUT", "/bucket/key", {"Content-Length": "abc"}, b"data"), 400, "InvalidArgument"),
    Case("OSS body over 5 GB", "oss",
         lambda lc: http("PUT", "/bucket/key", {"Content-Length": str(6 * 1024 ** 3)}), 400, "EntityTooLarge"),
    Case("OSS Authorization garbage", "oss",
         lambda lc: http("GET", "/bucket/key", {"Authorization": "OSS \u00ff\u00fe:::"}), (400, 403)),
    Case("OSS unknown sub-resource", "oss",
         lambda lc: http("GET", "/bucket?nosuchsubresource=1", {}), (400, 403, 501)),
]


def send(lc: Any, case: Case, timeout: float = 20.0) -> tuple[int, bytes]:
    """Send a case's bytes; the status and body of the answer."""
    address = lc.endpoint if case.endpoint == "rpc" else lc.oss_endpoint
    host, port = address.split("://", 1)[-1].rstrip("/").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(case.build(lc))
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished: the answer is already there to read
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                       if line.lower().startswith(b"content-length:")), None)
        while length is not None and len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, rest


def check(case: Case, status: int, body: bytes) -> None:
    wanted = case.status if isinstance(case.status, tuple) else (case.status,)
    assert status in wanted, f"{case.name}: {status} {body[:300]!r}"
    if case.code is not None:
        if case.endpoint == "rpc":
            assert json.loads(body)["Code"] == case.code, f"{case.name}: {body[:300]!r}"
        else:
            assert f"<Code>{case.code}</Code>".encode() in body, f"{case.name}: {body[:300]!r}"


def test_there_are_at_least_25_kinds() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_malformed_request_gets_a_4xx(localcloud: Any, case: Case) -> None:
    status, body = send(localcloud, case)
    check(case, status, body)


def test_200_malformed_requests_in_parallel_with_good_ones(localcloud: Any) -> None:
    ecs = localcloud.client("ecs")
    log = localcloud.state_dir / "daemon.log"
    log_before = log.stat().st_size

    def good(_: int) -> str:
        return ecs.describe_zones(ecs_models.DescribeZonesRequest(region_id=localcloud.region)).body.request_id

    bad_cases = [CASES[i % len(CASES)] for i in range(200)]
    with ThreadPoolExecutor(max_workers=24) as pool:
        good_calls = [pool.submit(good, i) for i in range(100)]
        answers = [(case, pool.submit(send, localcloud, case)) for case in bad_cases]
        for case, future in answers:
            check(case, *future.result())
        assert all(call.result() for call in good_calls)
    assert good(0)
    logged = log.read_bytes()[log_before:].decode(errors="replace")
    assert "Traceback" not in logged and "internal error" not in logged, logged[-3000:]
