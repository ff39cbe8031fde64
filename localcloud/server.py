"""The HTTP endpoint of every RPC product, and the daemon's admin routes.

RPC: `GET|POST /?Action=...` (V1) or with `x-acs-action`/`x-acs-version` headers (V3); parameters
in the query and, for form posts, the body. The product is chosen by API version. Responses and
errors are JSON in Alibaba's shape, so the SDKs raise their own exceptions with the right codes.

Admin (`/_localcloud/...`, used by the CLI): bearer token from the state directory.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import admin, ids
from .auth import same_secret
from .cloud import Cloud
from .errors import ApiError
from .params import Params, host_name, is_length
from .registry import PRODUCTS, Request, find_action, resource_of

log = logging.getLogger("localcloud.api")
access_log = logging.getLogger("localcloud.access")

GLOBAL_PRODUCTS = ("ram", "sts")
# Actions any authenticated caller may perform, whatever its policies (as on Alibaba).
UNRESTRICTED_ACTIONS = ("sts:GetCallerIdentity",)
# The largest request body taken (the largest API body, CreateScalingConfiguration with 32 KiB of
# user data, is far below it); a larger one gets 413 before it is read.
MAX_BODY = 1024 * 1024
# How long a connection may stay silent, in a request or between two: a client that announces a body
# it never sends, or holds an idle connection, frees its thread then.
IDLE_TIMEOUT = 60
# The actions whose documented parameters make RegionId mandatory (`Required: Yes`); the others take
# the endpoint's region (the ones on one resource: ModifyScalingGroup, DeleteInstance, ...).
REGION_REQUIRED = frozenset({
    *(("ecs", a) for a in ("RunInstances", "DescribeInstances", "DescribeInstanceStatus", "DescribeZones",
                           "DescribeImages", "CreateImage", "DeleteImage", "CreateSecurityGroup",
                           "DescribeSecurityGroups", "DescribeAvailableResource", "DescribeSpotPriceHistory",
                           "DescribeSpotAdvice", "DeleteInstances", "StartInstances", "StopInstances",
                           "RebootInstances", "TagResources", "UntagResources", "ListTagResources")),
    *(("vpc", a) for a in ("CreateVpc", "DescribeVpcs", "CreateVSwitch", "DescribeZones")),
    *(("ess", a) for a in ("CreateScalingGroup", "DescribeScalingGroups", "DescribeScalingInstances",
                           "DescribeScalingActivities", "DescribeScalingConfigurations")),
})
# A lingering close: how long, and how much, a closing connection reads of what its client still sends.
LINGER_SECONDS = 1.0
LINGER_BYTES = 1024 * 1024
# The record of the first response to each ClientToken (keyed by product:action:token); owned here.
CLIENT_TOKEN = "client_token"


# Alibaba's host names of the RPC products: `ecs.aliyuncs.com`, `ecs-cn-hangzhou.aliyuncs.com`,
# `ecs-vpc.cn-hangzhou.aliyuncs.com`, `sts.cn-hangzhou.aliyuncs.com`, CloudMonitor's `metrics.<region>` and
# `cms-vpc.<region>`. localcloud serves every product on one port; a call whose Host names another
# product's endpoint is refused as that endpoint refuses it. Another host (an address, localhost) serves all.
_PRODUCT_HOST = re.compile(r"^(?P<label>[a-z]+)(?:-vpc)?(?:[.-][a-z0-9-]+)?\.aliyuncs\.com$")
_HOST_LABELS = {"metrics": "cms"}


def _host_serves(host_header: str, product: str) -> bool:
    found = _PRODUCT_HOST.match(host_name(host_header))
    if found is None or found.group("label") in ("oss", "s3"):
        return True
    label = found.group("label")
    return _HOST_LABELS.get(label, label) == product


def _error_body(err: ApiError, request_id: str) -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "HostId": "localcloud",
        "Code": err.code,
        "Message": err.message,
        "Recommend": "",
    }


class RpcHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # a request line that is not HTTP still gets a status line
    disable_nagle_algorithm = True
    server_version = "localcloud"
    timeout = IDLE_TIMEOUT
    cloud: Cloud  # set on the subclass made by make_server
    admin_token: str

    def log_message(self, format: str, *args: Any) -> None:  # quiet: we keep our own access log
        pass

    def log_error(self, format: str, *args: Any) -> None:
        """What the HTTP layer refused before a handler ran (a request line over 64 KiB: 414, ...)."""
        access_log.info("%s refused: %s", self.client_address[0], (format % args)[:200])

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _refuse_method(self) -> None:
        self.close_connection = True
        request_id = ids.request_id()
        self._send_json(405, _error_body(ApiError("MethodNotAllowed", f"The {self.command} method is not allowed: "
                                                  "RPC calls are GET or POST.", 405), request_id), request_id)
        access_log.info("%s %s %s 405 MethodNotAllowed", self.client_address[0], self.command, request_id)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse_method

    def _send_json(self, status: int, body: dict[str, Any], request_id: str) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-acs-request-id", request_id)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client has gone: nothing to answer
            self.close_connection = True

    def _read_body(self) -> bytes:
        """The request body, bounded: a length that is not a number, a body over MAX_BODY or one that ends
        early is refused (and the connection closed, since its bytes can no longer be told from the next
        request's)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ApiError("MissingContentLength", "The request must carry a Content-Length header "
                           "(chunked transfer encoding is not accepted).", 411)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        if not is_length(raw):
            self.close_connection = True
            raise ApiError("InvalidContentLength", f"The Content-Length header is not a length: {raw[:40]!r}.")
        length = int(raw)
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError("RequestEntityTooLarge", f"The request body ({length} bytes) is larger than "
                           f"{MAX_BODY} bytes.", 413)
        try:
            body = self.rfile.read(length)
        except OSError:  # the socket's timeout: a client that announced more than it sends
            body = b""
        if len(body) != length:
            self.close_connection = True
            raise ApiError("IncompleteBody", "The request body ended before Content-Length bytes.")
        return body

    def _handle(self) -> None:
        started = time.monotonic()
        request_id = ids.request_id()
        url = urlsplit(self.path)
        action_name = "-"
        status, code = 200, "OK"
        try:
            body = self._read_body()
            if url.path.startswith("/_localcloud/"):
                action_name = url.path
                status, code = self._handle_admin(url.path, body, request_id)
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            action_name = headers.get("x-acs-action") or params.get("Action", "") or "-"
            if body and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                try:
                    form = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise ApiError("InvalidParameter", "The form body is not UTF-8 text.") from None
                params.update(parse_qsl(form, keep_blank_values=True))
            response = self._dispatch(url.path, params, headers, body, request_id)
            self._send_json(200, {"RequestId": request_id, **response}, request_id)
        except ApiError as err:
            status, code = err.status, err.code
            self._send_json(err.status, _error_body(err, request_id), request_id)
        except Exception:
            log.exception("internal error in %s", action_name)
            status, code = 500, "InternalError"
            self._send_json(500, _error_body(ApiError(
                "InternalError", "The request processing has failed due to some unknown error.", 500), request_id),
                request_id)
        finally:
            access_log.info("%s %s %s %d %s %.1fms", self.client_address[0], action_name[:80], request_id, status,
                            code, (time.monotonic() - started) * 1000)

    def _dispatch(self, path: str, params: dict[str, str], headers: dict[str, str], body: bytes,
                  request_id: str) -> dict[str, Any]:
        cloud = self.cloud
        version = headers.get("x-acs-version") or params.get("Version", "")
        action_name = headers.get("x-acs-action") or params.get("Action", "")
        if not action_name:
            raise ApiError("MissingAction", "The request names no action (x-acs-action header or Action parameter).")
        product = PRODUCTS.get(version)
        if product is None or not _host_serves(headers.get("host", ""), product):
            # Also what a product's own host answers for another product's Version (an ESS call sent to
            # ecs.aliyuncs.com: InvalidVersion, aliyun-openapi-java-sdk#23).
            raise ApiError("InvalidVersion", f"Specified parameter Version is not valid: {version!r}.")
        cloud.faults.apply("api", f"{product}:{action_name[:80]}")  # a throttled call is refused before all else
        principal = cloud.auth.authenticate_rpc(self.command, path, params, headers, body)
        handler = find_action(product, action_name)
        if handler is None:  # after authentication, as Alibaba answers: an anonymous caller learns nothing
            raise ApiError("InvalidAction.NotFound", f"Specified api {action_name[:80]} is not found in version "
                           f"{version}.", 404)
        if (product, action_name) in REGION_REQUIRED and not params.get("RegionId"):
            raise ApiError("MissingParameter", "The input parameter \"RegionId\" that is mandatory for processing "
                           "this request is not supplied.")
        region = params.get("RegionId") or cloud.settings.region
        if product not in GLOBAL_PRODUCTS and region != cloud.settings.region:
            raise ApiError("InvalidRegionId.NotFound", f"The specified region {region} does not exist; this cloud "
                           f"serves {cloud.settings.region}.", 404)
        typed = Params(params)
        if f"{product}:{action_name}" not in UNRESTRICTED_ACTIONS:
            resource = resource_of(cloud, product, action_name, typed)
            cloud.auth.authorize(principal, f"{product}:{action_name}",
                                 f"acs:{product}:{region}:{cloud.account_uid}:{resource}")
        request = Request(action_name, product, typed, principal, request_id, region)
        token = params.get("ClientToken")
        with cloud.store.transaction():
            if token:
                key = f"{product}:{action_name}:{principal.account_uid}:{token}"
                cached = cloud.store.get(CLIENT_TOKEN, key)
                if cached is not None:
                    return cached["Response"]
            response = handler(cloud, request)
            if token:
                cloud.store.put(CLIENT_TOKEN, key, {"Response": response})
        return response

    def _handle_admin(self, path: str, body: bytes, request_id: str) -> tuple[int, str]:
        """Answer an admin route; its status and code, for the access log."""
        if path == "/_localcloud/health":
            self._send_json(200, {"ok": True, "pid": admin.pid()}, request_id)
            return 200, "OK"
        supplied = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if not same_secret(supplied, self.admin_token):
            raise ApiError("Unauthorized", "admin token required", 401)
        try:
            args = json.loads(body or b"{}")
        except ValueError as err:
            raise ApiError("InvalidParameter", f"The body is not JSON: {err}.") from None
        if not isinstance(args, dict):
            raise ApiError("InvalidParameter", "The body must be a JSON object.")
        try:
            result = admin.handle(self.cloud, path.removeprefix("/_localcloud/"), args)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ApiError("InvalidParameter", str(err)) from None
        self._send_json(200, result, request_id)
        return 200, "OK"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Connections waiting to be accepted: with the default of 5, a burst of clients overflowed the queue and
    # some saw their connection reset instead of their answer.
    request_queue_size = 128

    def shutdown_request(self, request: Any) -> None:
        """Close a connection gently (a lingering close): stop writing, then read and drop what the client still
        sends, for a moment, before closing. Closing with unread bytes (a refused request's rest) makes the
        kernel reset the connection, and a reset discards the answer the client has not read yet."""
        try:
            request.shutdown(socket.SHUT_WR)
            request.settimeout(LINGER_SECONDS)
            drained = 0
            while drained < LINGER_BYTES and (chunk := request.recv(64 * 1024)):
                drained += len(chunk)
        except OSError:
            pass
        self.close_request(request)


def make_server(cloud: Cloud, host: str, port: int, admin_token: str) -> Server:
    handler = type("BoundRpcHandler", (RpcHandler,), {"cloud": cloud, "admin_token": admin_token})
    return Server((host, port), handler)
