"""What instances reach on port 80 of their network's gateway, as ECS instances reach internal endpoints.

One front door per instance network listens on the gateway. It looks at the Host header of the
first request on a connection and then either answers it itself (the metadata service: Host
`100.100.100.200`, which a DNAT rule sends here) or relays the whole connection, bytes unchanged,
to localcloud's OSS endpoint (`oss-<region>[-internal].aliyuncs.com` and `<bucket>.` names) or to
its RPC endpoint (`ecs.<region>.aliyuncs.com`, `ecs-vpc...`, `ess.aliyuncs.com`, `sts...`, any other
`*.aliyuncs.com`). Relaying whole connections keeps signatures valid (the Host header is the one
the client signed), streams uploads, and leaves `Expect: 100-continue` to the OSS server. A client
pools connections per host name, so one connection carries requests for one endpoint.

The front door, the DNS responder and the DNAT rule for 100.100.100.200 come and go with the
instance networks (`NetworkServices`, hooked to the container backend by the daemon).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from . import instances
from .dns import IP_FREEBIND, DnsResponder
from .metadata import METADATA_ADDRESS, MetadataService
from .params import host_name, is_length

log = logging.getLogger("localcloud.frontdoor")

_OSS_HOST = re.compile(r"^(?:[a-z0-9-]+\.)?oss-[a-z0-9-]+\.aliyuncs\.com$")
HEAD_LIMIT = 64 * 1024
HEAD_TIMEOUT = 30.0
RELAY_CHUNK = 256 * 1024
METADATA_BODY_LIMIT = 64 * 1024  # the metadata service takes no body; a token request sends none
CUT_POLL = 0.2  # how often a held connection looks whether its instance's network cut is over


# The instance behind each connection the front door relays to an endpoint: {the relay's local port: the
# instance's address}; the endpoint, which sees the relay as its client, asks `origin_of`.
_RELAYED: dict[int, str] = {}


def origin_of(client: tuple[str, int]) -> str | None:
    """The address of the instance whose request reached an endpoint from `client` (its peer address), when
    the front door relayed it; None for a request that came from elsewhere (the host)."""
    return _RELAYED.get(client[1]) if client[0] == "127.0.0.1" else None


def route(host_header: str) -> str:
    """`metadata`, `oss` or `rpc` for a Host header."""
    host = host_name(host_header)
    if host.endswith(".aliyuncs.com"):
        return "oss" if _OSS_HOST.match(host) else "rpc"
    return "metadata"


def _peek_head(sock: socket.socket) -> bytes:
    """The request head, read without consuming it (the relay or the HTTP handler reads it again)."""
    deadline = time.monotonic() + HEAD_TIMEOUT
    seen = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        data = sock.recv(HEAD_LIMIT, socket.MSG_PEEK)
        if not data or b"\r\n\r\n" in data or len(data) >= HEAD_LIMIT:
            return data
        if data == seen:
            time.sleep(0.005)  # the rest of the head is still on its way
        seen = data
    return seen


def _host_header(head: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            return value.strip().decode("latin-1")
    return ""


def _pump(source: socket.socket, sink: socket.socket, cut: Callable[[], bool] = lambda: False) -> None:
    """Relay bytes from `source` to `sink` until either closes; nothing passes while `cut()` holds."""
    try:
        while True:
            data = source.recv(RELAY_CHUNK)
            if not data:
                break
            while cut():
                time.sleep(CUT_POLL)
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class MetadataHttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Tengine"
    timeout = HEAD_TIMEOUT
    server: FrontDoorServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        raw = self.headers.get("Content-Length") or "0"
        if not is_length(raw) or int(raw) > METADATA_BODY_LIMIT:
            self.close_connection = True
            self._reply(400, "text/plain", "Bad Request: Content-Length")
            return
        if int(raw):
            self.rfile.read(int(raw))
        if self._fault_kills():
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.server.metadata.answer(self.command, self.path, headers, self.client_address[0])
        self._reply(answer.status, answer.content_type, answer.body)

    def _fault_kills(self) -> bool:
        """A kill fault on the metadata service (localcloud/faults.py) kills the instance that asked, and the
        question goes unanswered (True)."""
        cloud = self.server.metadata.cloud
        if not cloud.faults.kills("meta"):
            return False
        machine = instances.at_address(cloud.store, self.client_address[0])
        path = self.path.split("?", 1)[0]
        if cloud.faults.apply("meta", path, self.command, machine) is None:
            return False
        instances.kill_in_request(cloud, machine, f"{self.command} {path} (metadata)")
        self.close_connection = True
        log.info("front door: %s %s from %s dropped: the instance %s was killed (fault)", self.command, path,
                 self.client_address[0], machine["InstanceId"])
        return True

    def _reply(self, status: int, content_type: str, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer


class _FrontDoorHandler(socketserver.BaseRequestHandler):
    server: FrontDoorServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        faults = self.server.metadata.cloud.faults
        address = self.client_address[0]
        if faults.cut(address, count=True):  # a dropped link: nothing gets through until it is back
            while faults.cut(address):
                time.sleep(CUT_POLL)
        try:
            head = _peek_head(sock)
        except OSError:
            return
        if not head:
            return
        sock.settimeout(None)
        target = route(_host_header(head))
        if target == "metadata":
            MetadataHttpHandler(sock, self.client_address, self.server)
            return
        port = self.server.ports[target]
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError as err:
            log.warning("front door: %s endpoint on port %s unreachable: %s", target, port, err)
            return
        upstream.settimeout(None)
        relay_port = upstream.getsockname()[1]
        _RELAYED[relay_port] = self.client_address[0]
        try:
            cut = functools.partial(faults.cut, address)
            back = threading.Thread(target=_pump, args=(upstream, sock, cut), daemon=True)
            back.start()
            _pump(sock, upstream, cut)
            back.join()
        finally:
            _RELAYED.pop(relay_port, None)
            upstream.close()


class FrontDoorServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: str, metadata: MetadataService, ports: dict[str, int]) -> None:
        self.metadata = metadata
        self.ports = ports
        super().__init__((address, 80), _FrontDoorHandler)

    def server_bind(self) -> None:
        # The gateway address appears only when podman brings the bridge up with the first container.
        self.socket.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        super().server_bind()


def _dnat_rule(cidr: str, gateway: str) -> list[str]:
    return ["PREROUTING", "-s", cidr, "-d", f"{METADATA_ADDRESS}/32", "-p", "tcp", "--dport", "80",
            "-m", "comment", "--comment", "localcloud metadata", "-j", "DNAT", "--to-destination", f"{gateway}:80"]


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "-t", "nat", *args], capture_output=True, text=True, timeout=60)


def remove_metadata_redirect(gateway: str, cidr: str) -> None:
    """Delete the DNAT rule of an instance network (every copy: a killed daemon may have left one)."""
    while _iptables("-C", *_dnat_rule(cidr, gateway)).returncode == 0:
        if _iptables("-D", *_dnat_rule(cidr, gateway)).returncode != 0:
            return


class NetworkServices:
    """The front door and the DNS responder on each instance network's gateway.

    Instances reach the metadata service at 100.100.100.200 as on ECS: a DNAT rule per instance
    network sends it to that network's own front door, so several localclouds on one host (a demo
    and the tests) each answer their own instances, which one shared listener on the host's
    loopback could not do.
    """

    def __init__(self, metadata: MetadataService, rpc_port: int, oss_port: int) -> None:
        self.metadata = metadata
        self.ports = {"rpc": rpc_port, "oss": oss_port}
        self._lock = threading.Lock()
        self._served: dict[str, tuple[str, FrontDoorServer, DnsResponder]] = {}

    def network_up(self, gateway: str, cidr: str) -> None:
        with self._lock:
            if gateway in self._served:
                return
            door = FrontDoorServer(gateway, self.metadata, self.ports)
            threading.Thread(target=door.serve_forever, name=f"frontdoor-{gateway}", daemon=True).start()
            dns = DnsResponder(gateway)
            rule = _dnat_rule(cidr, gateway)
            if _iptables("-C", *rule).returncode != 0:
                added = _iptables("-I", *rule)
                if added.returncode != 0:
                    log.error("cannot send %s to the metadata service of %s: %s", METADATA_ADDRESS, cidr,
                              added.stderr.strip())
            self._served[gateway] = (cidr, door, dns)
            log.info("serving instance network %s: endpoints, DNS and metadata on %s", cidr, gateway)

    def network_down(self, gateway: str, cidr: str) -> None:
        with self._lock:
            served = self._served.pop(gateway, None)
        if served is None:
            return
        _, door, dns = served
        remove_metadata_redirect(gateway, cidr)
        door.shutdown()
        door.server_close()
        dns.close()

    def close(self) -> None:
        for gateway, (cidr, _, _) in list(self._served.items()):
            self.network_down(gateway, cidr)
