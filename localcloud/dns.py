"""A small DNS responder for instance networks: `*.aliyuncs.com` is localcloud, the rest is the host's.

Instances use it as their only resolver (it listens on their network's gateway). Names under
`aliyuncs.com` get an A record with the gateway address, where the front door answers every
internal endpoint; so a bucket made after an instance booted resolves like any other, which a
hosts file could not do for virtual-hosted OSS names. Every other query is relayed unchanged to
the host's own resolvers (UDP, and TCP when the client retries a truncated answer over TCP).
"""

from __future__ import annotations

import logging
import socket
import socketserver
import struct
import threading
from pathlib import Path

log = logging.getLogger("localcloud.dns")

LOCAL_SUFFIX = "aliyuncs.com"
TTL_SECONDS = 30
TYPE_A = 1
CLASS_IN = 1
UPSTREAM_TIMEOUT = 5.0
# Linux's IP_FREEBIND (not exported by Python's socket module): bind to the gateway address before
# podman has brought up the bridge that carries it.
IP_FREEBIND = 15


def host_resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    servers = []
    try:
        for line in resolv_conf.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                servers.append(parts[1])
    except OSError:
        pass
    return servers or ["127.0.0.53"]


def parse_question(packet: bytes) -> tuple[str, int, int] | None:
    """(name, type, end offset of the question) of a standard query, or None when it is not one."""
    if len(packet) < 12:
        return None
    flags, qdcount = struct.unpack("!2xHH", packet[:6])
    if flags & 0x8000 or (flags >> 11) & 0xF or qdcount != 1:
        return None
    labels, offset = [], 12
    while True:
        if offset >= len(packet):
            return None
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0 or offset + length > len(packet):
            return None
        labels.append(packet[offset:offset + length].decode("ascii", "replace"))
        offset += length
    if offset + 4 > len(packet):
        return None
    qtype, _qclass = struct.unpack("!HH", packet[offset:offset + 4])
    return ".".join(labels).lower(), qtype, offset + 4


def is_local(name: str) -> bool:
    return name == LOCAL_SUFFIX or name.endswith("." + LOCAL_SUFFIX)


def local_answer(packet: bytes, address: str) -> bytes | None:
    """The answer to a query for a name under aliyuncs.com (A: `address`; other types: no data)."""
    question = parse_question(packet)
    if question is None or not is_local(question[0]):
        return None
    _name, qtype, end = question
    recursion_desired = packet[2] & 0x01
    flags = 0x8400 | (recursion_desired << 8) | 0x0080  # response, authoritative, RD copied, RA
    answers = b""
    if qtype == TYPE_A:
        answers = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL_SECONDS, 4) + socket.inet_aton(address)
    header = packet[:2] + struct.pack("!HHHHH", flags, 1, 1 if answers else 0, 0, 0)
    return header + packet[12:end] + answers


class Resolver:
    """Answers one query packet: locally for aliyuncs.com, else through the host's resolvers."""

    def __init__(self, address: str, upstreams: list[str]) -> None:
        self.address = address
        self.upstreams = upstreams

    def answer_udp(self, packet: bytes) -> bytes | None:
        local = local_answer(packet, self.address)
        if local is not None:
            return local
        for upstream in self.upstreams:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(UPSTREAM_TIMEOUT)
                try:
                    s.sendto(packet, (upstream, 53))
                    return s.recv(65535)
                except OSError:
                    continue
        return None

    def answer_tcp(self, packet: bytes) -> bytes | None:
        local = local_answer(packet, self.address)
        if local is not None:
            return local
        for upstream in self.upstreams:
            try:
                with socket.create_connection((upstream, 53), timeout=UPSTREAM_TIMEOUT) as s:
                    s.sendall(struct.pack("!H", len(packet)) + packet)
                    return _read_tcp_message(s)
            except OSError:
                continue
        return None


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-message")
        data += chunk
    return data


def _read_tcp_message(sock: socket.socket) -> bytes:
    (length,) = struct.unpack("!H", _read_exactly(sock, 2))
    return _read_exactly(sock, length)


class _UdpHandler(socketserver.BaseRequestHandler):
    server: _UdpServer

    def handle(self) -> None:
        packet, sock = self.request
        reply = self.server.resolver.answer_udp(packet)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TcpHandler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        self.request.settimeout(10)
        try:
            while True:
                reply = self.server.resolver.answer_tcp(_read_tcp_message(self.request))
                if reply is None:
                    return
                self.request.sendall(struct.pack("!H", len(reply)) + reply)
        except (OSError, ConnectionError):
            return


class _FreeBind:
    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)  # type: ignore[attr-defined]
        super().server_bind()  # type: ignore[misc]


class _UdpServer(_FreeBind, socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True
    resolver: Resolver


class _TcpServer(_FreeBind, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    resolver: Resolver


class DnsResponder:
    """UDP and TCP port 53 on one gateway address."""

    def __init__(self, address: str, upstreams: list[str] | None = None) -> None:
        resolver = Resolver(address, upstreams or host_resolvers())
        self._servers: list[_UdpServer | _TcpServer] = []
        pairs: tuple[tuple[type[_UdpServer | _TcpServer], type[socketserver.BaseRequestHandler]], ...] = (
            (_UdpServer, _UdpHandler), (_TcpServer, _TcpHandler))
        for cls, handler in pairs:
            server = cls((address, 53), handler)
            server.resolver = resolver
            self._servers.append(server)
        for server in self._servers:
            threading.Thread(target=server.serve_forever, name=f"dns-{address}", daemon=True).start()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
