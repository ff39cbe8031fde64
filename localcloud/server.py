"""The HTTP endpoint of every RPC product, and the daemon's admin routes.

RPC: `GET|POST /?Action=...` (V1) or with `x-acs-action`/`x-acs-version` headers (V3); parameters
in the query and, for form posts, the body. The product is chosen by API version. Responses and
errors are JSON in Alibaba's shape, so the SDKs raise their own exceptions with the right codes.

Admin (`/_localcloud/...`, used by the CLI): bearer token from the state directory.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import admin, ids
from .cloud import PRODUCTS, Cloud, Request, find_action, resource_of
from .errors import ApiError
from .params import Params

log = logging.getLogger("localcloud.api")
access_log = logging.getLogger("localcloud.access")

GLOBAL_PRODUCTS = ("ram", "sts")
# Actions any authenticated caller may perform, whatever its policies (as on Alibaba).
UNRESTRICTED_ACTIONS = ("sts:GetCallerIdentity",)
# The record of the first response to each ClientToken (keyed by product:action:token); owned here.
CLIENT_TOKEN = "client_token"


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
    disable_nagle_algorithm = True
    server_version = "localcloud"
    cloud: Cloud  # set on the subclass made by make_server
    admin_token: str

    def log_message(self, format: str, *args: Any) -> None:  # quiet: we keep our own access log
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _send_json(self, status: int, body: dict[str, Any], request_id: str) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-acs-request-id", request_id)
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self) -> None:
        started = time.monotonic()
        request_id = ids.request_id()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path.startswith("/_localcloud/"):
            self._handle_admin(url.path, body, request_id)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if body and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        action_name = headers.get("x-acs-action") or params.get("Action", "")
        status, code = 200, "OK"
        try:
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
        access_log.info("%s %s %s %d %s %.1fms", self.client_address[0], action_name, request_id, status, code,
                        (time.monotonic() - started) * 1000)

    def _dispatch(self, path: str, params: dict[str, str], headers: dict[str, str], body: bytes,
                  request_id: str) -> dict[str, Any]:
        cloud = self.cloud
        version = headers.get("x-acs-version") or params.get("Version", "")
        action_name = headers.get("x-acs-action") or params.get("Action", "")
        if not action_name:
            raise ApiError("MissingAction", "The request names no action (x-acs-action header or Action parameter).")
        product = PRODUCTS.get(version)
        if product is None:
            raise ApiError("InvalidVersion", f"Specified parameter Version is not valid: {version!r}.")
        handler = find_action(product, action_name)
        if handler is None:
            raise ApiError("InvalidAction.NotFound", f"Specified api {action_name} is not found in version {version}.",
                           404)
        principal = cloud.auth.authenticate_rpc(self.command, path, params, headers, body)
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

    def _handle_admin(self, path: str, body: bytes, request_id: str) -> None:
        if path == "/_localcloud/health":
            self._send_json(200, {"ok": True, "pid": admin.pid()}, request_id)
            return
        supplied = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(supplied, self.admin_token):
            self._send_json(401, _error_body(ApiError("Unauthorized", "admin token required", 401), request_id),
                            request_id)
            return
        try:
            args = json.loads(body or b"{}")
            result = admin.handle(self.cloud, path.removeprefix("/_localcloud/"), args)
            self._send_json(200, result, request_id)
        except ApiError as err:
            self._send_json(err.status, _error_body(err, request_id), request_id)
        except (ValueError, KeyError, TypeError) as err:
            self._send_json(400, _error_body(ApiError("InvalidParameter", str(err)), request_id), request_id)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(cloud: Cloud, host: str, port: int, admin_token: str) -> Server:
    handler = type("BoundRpcHandler", (RpcHandler,), {"cloud": cloud, "admin_token": admin_token})
    return Server((host, port), handler)
