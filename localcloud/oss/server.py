"""The OSS endpoint: HTTP/1.1, one thread per connection, bodies streamed both ways.

Each request: find the bucket and key (path style or virtual host), name the operation, check the
signature, authorize, answer `Expect: 100-continue` only then (so a rejected upload is never
sent), run the operation, render OSS's XML errors (also in `x-oss-err` for HEAD, as OSS does).
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .. import frontdoor, instances
from ..cloud import Cloud
from ..errors import ApiError
from ..params import is_length
from . import access, buckets, multipart, objects, xmlio
from .call import Body, Call, Reply
from .listing import list_objects, list_objects_v2
from .routing import Addressing, check_addressing, operation
from .service import OssService
from .signing import SignedRequest, authenticate

log = logging.getLogger("localcloud.oss")
access_log = logging.getLogger("localcloud.oss.access")

HANDLERS = {**buckets.HANDLERS, **objects.HANDLERS, **multipart.HANDLERS,
            "ListObjects": list_objects, "ListObjectsV2": list_objects_v2}
DRAIN_LIMIT = 1024 * 1024
# OSS's largest single request body (PutObject, UploadPart: 5 GB); a larger one is refused unread.
MAX_BODY = 5 * 1024 ** 3
# How long a connection may stay silent, within a request or between two.
IDLE_TIMEOUT = 120


def error_reply(err: ApiError, request_id: str, host: str, head: bool) -> Reply:
    ec = getattr(err, "ec", "")
    body = xmlio.document("Error", [("Code", err.code), ("Message", err.message), ("RequestId", request_id),
                                    ("HostId", host), ("EC", ec)])
    headers = {"x-oss-err": base64.b64encode(body).decode()} if head else {}
    if ec:
        headers["x-oss-ec"] = ec
    return Reply(status=err.status, headers=headers, body=body, content_type="application/xml", error_code=err.code)


class OssHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # a request line that is not HTTP still gets a status line
    disable_nagle_algorithm = True
    server_version = "AliyunOSS"
    timeout = IDLE_TIMEOUT
    svc: OssService
    addressing: Addressing

    def log_message(self, format: str, *args: Any) -> None:  # quiet: we keep our own access log
        pass

    def log_error(self, format: str, *args: Any) -> None:
        """What the HTTP layer refused before a handler ran (a request line over 64 KiB: 414, ...)."""
        access_log.info("%s refused: %s", self.client_address[0], (format % args)[:200])

    def handle_expect_100(self) -> bool:
        return True  # answered in _handle, once the request is authenticated and authorized

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _request(self) -> tuple[SignedRequest, Body]:
        target = self.path
        if not target.startswith("/"):  # absolute form, as a proxy would send
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        raw_path, _, raw_query = target.partition("?")
        host = self.headers.get("Host", "")
        bucket, key, virtual = self.addressing.split(host, raw_path)
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = self.headers.get("Content-Length") or ""
        body = Body(self.rfile, int(length) if is_length(length) else None, chunked)
        return SignedRequest(self.command, host, raw_path or "/", raw_query, list(self.headers.items()),
                             bucket, key, virtual), body

    def _handle(self) -> None:
        started = time.monotonic()
        request_id = uuid.uuid4().hex[:24].upper()
        op, continued = "-", False
        req, body = self._request()
        head = self.command == "HEAD"
        try:
            self._check_length(body)
            check_addressing(req.host, req.bucket, req.virtual_hosted)
            op = operation(self.command, req.bucket, req.key, req.query,
                           bool(req.header("x-oss-copy-source") or req.header("x-amz-copy-source")))
            if self._fault_kills(req, body, request_id):
                return
            call = Call(op, self.svc, req, authenticate(self.svc.cloud.auth, req), body, request_id)
            access.check_signature_version(call, op)
            access.check_signing_region(call)
            access.authorize(call, op, req.bucket, req.key)
            if (self.headers.get("Expect", "").lower() == "100-continue") and not body.done:
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                continued = True
            reply = HANDLERS[op](call)
        except ApiError as err:
            reply = error_reply(err, request_id, req.host, head)
        except (TimeoutError, ConnectionError):  # the client went silent or away in the middle of its body
            self.close_connection = True
            access_log.info("%s %s %s %s dropped: the client stopped sending", self.client_address[0], op,
                            req.bucket or "-", request_id)
            return
        except Exception:
            log.exception("internal error in %s", op)
            reply = error_reply(ApiError("InternalError", "We encountered an internal error. Please try again.",
                                         500), request_id, req.host, head)
        self._finish_body(body, continued)
        self._send(reply, request_id, head)
        access_log.info("%s %s %s %s %d %s %.1fms", self.client_address[0], op, req.bucket or "-", request_id,
                        reply.status, reply.error_code or "OK", (time.monotonic() - started) * 1000)

    def _fault_kills(self, req: SignedRequest, body: Body, request_id: str) -> bool:
        """Apply the injected faults (localcloud/faults.py): wait their latency, raise their error, or kill the
        instance that sent the request and leave the request unanswered (True)."""
        cloud = self.svc.cloud
        machine = None  # the instance that sent the request, looked up only while a kill fault waits
        if cloud.faults.kills("oss") and (address := frontdoor.origin_of(self.client_address)):
            machine = instances.at_address(cloud.store, address)
        name = f"{req.bucket or ''}/{req.key or ''}"
        victim = cloud.faults.apply("oss", name, self.command, machine)
        if victim is None:
            return False
        instances.kill_in_request(cloud, machine, f"{self.command} {name}")
        body.abandon()
        self.close_connection = True
        access_log.info("%s %s %s %s dropped: the instance %s was killed (fault)", self.client_address[0],
                        self.command, name, request_id, victim)
        return True

    def _check_length(self, body: Body) -> None:
        """Refuse a Content-Length that is not a length, or over OSS's limit, before reading anything."""
        length = self.headers.get("Content-Length")
        if length is not None and not is_length(length):
            body.abandon()
            self.close_connection = True
            raise ApiError("InvalidArgument", f"The Content-Length header is not a length: {length[:40]!r}.", 400)
        if (body.pending or 0) > MAX_BODY:
            body.abandon()
            self.close_connection = True
            raise ApiError("EntityTooLarge", f"Your proposed upload exceeds the maximum allowed size "
                           f"({MAX_BODY} bytes).", 400)

    def _finish_body(self, body: Body, continued: bool) -> None:
        """Read what the handler left of the body, or close: the next request must start cleanly."""
        if body.done:
            return
        waiting = self.headers.get("Expect", "").lower() == "100-continue" and not continued
        if waiting or body.pending is None or body.pending > DRAIN_LIMIT:
            self.close_connection = True
            return
        try:
            while body.read(64 * 1024):
                pass
        except (ApiError, OSError):
            self.close_connection = True

    def _send(self, reply: Reply, request_id: str, head: bool) -> None:
        headers = {k.lower(): (k, v) for k, v in reply.headers.items()}
        if reply.stream is not None:
            length = reply.stream[2]
        elif "content-length" in headers:
            length = int(headers.pop("content-length")[1])
        else:
            length = len(reply.body)
        try:
            self.send_response(reply.status)
            self.send_header("x-oss-request-id", request_id)
            self.send_header("x-amz-request-id", request_id)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            for name, value in headers.values():
                self.send_header(name, value)
            if reply.status != 304:
                self.send_header("Content-Length", str(length))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if head or reply.status in (204, 304):
                return
            if reply.stream is not None:
                handle, offset, count = reply.stream
                if count:
                    self.connection.sendfile(handle, offset, count)
            else:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if reply.stream is not None:
                reply.stream[0].close()


class OssServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[OssHandler], svc: OssService) -> None:
        self.svc = svc  # before the bind, whose failure calls server_close
        super().__init__(address, handler)

    def server_close(self) -> None:
        super().server_close()
        self.svc.close()


def make_oss_server(cloud: Cloud, host: str, port: int) -> OssServer:
    svc = OssService(cloud)
    cloud.oss = svc
    handler = type("BoundOssHandler", (OssHandler,), {"svc": svc, "addressing": Addressing(host)})
    return OssServer((host, port), handler, svc)
