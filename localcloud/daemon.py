"""The localcloud daemon: the RPC endpoint, OSS (when built) and the background engine."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from pathlib import Path

from .backends import BACKENDS
from .cloud import Cloud
from .config import Settings
from .frontdoor import NetworkServices
from .metadata import MetadataService
from .server import make_server

log = logging.getLogger("localcloud.daemon")

RUNTIME_FILE = "daemon.json"
ADMIN_TOKEN_FILE = "admin-token"


def _admin_token(state_dir: Path) -> str:
    path = state_dir / ADMIN_TOKEN_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(24).hex())
    return path.read_text().strip()


def _start_oss(cloud: Cloud, host: str, port: int):
    """The OSS endpoint, when this build has one (localcloud.oss)."""
    try:
        from .oss.server import make_oss_server
    except ImportError:
        return None
    return make_oss_server(cloud, host, port)


def _serve_instance_networks(cloud: Cloud, rpc_port: int, oss_port: int | None) -> NetworkServices | None:
    """Front door, DNS and metadata service on every instance network (container instances only)."""
    from .backends.containers import ContainersBackend

    if not isinstance(cloud.backend, ContainersBackend):
        return None
    services = NetworkServices(MetadataService(cloud), rpc_port, oss_port or 0)
    cloud.backend.serve_networks(services.network_up, services.network_down)
    return services


def run(state_dir: Path, host: str, port: int, oss_port: int, settings: Settings) -> None:
    cloud = Cloud(state_dir, settings)
    token = _admin_token(state_dir)
    rpc = make_server(cloud, host, port, token)
    oss = _start_oss(cloud, host, oss_port)
    servers = [s for s in (rpc, oss) if s is not None]
    networks = _serve_instance_networks(cloud, rpc.server_address[1], oss.server_address[1] if oss else None)
    stop = threading.Event()

    def engine() -> None:
        while not stop.is_set():
            cloud.wakeup.clear()
            try:
                cloud.tick()
            except Exception:
                log.exception("engine tick failed")
            cloud.wakeup.wait(cloud.settings.engine_interval)

    threads = [threading.Thread(target=s.serve_forever, name=type(s).__name__, daemon=True) for s in servers]
    threads.append(threading.Thread(target=engine, name="engine", daemon=True))
    for t in threads:
        t.start()
    runtime = {
        "pid": os.getpid(), "host": host, "port": rpc.server_address[1],
        "oss_port": oss.server_address[1] if oss else None, "backend": cloud.settings.backend,
    }
    (state_dir / RUNTIME_FILE).write_text(json.dumps(runtime))
    log.info("localcloud serving on %s:%s (OSS %s), %s instances", host, runtime["port"], runtime["oss_port"],
             cloud.settings.backend)

    def shutdown(signum, frame) -> None:
        stop.set()
        cloud.wake()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    stop.wait()
    for s in servers:
        s.shutdown()
    if networks is not None:
        networks.close()
    (state_dir / RUNTIME_FILE).unlink(missing_ok=True)
    cloud.close()
    log.info("localcloud stopped")


def main() -> None:
    parser = argparse.ArgumentParser(prog="localcloud-daemon")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--oss-port", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--engine-interval", type=float, default=0.5)
    parser.add_argument("--backend", choices=BACKENDS, default="records")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run(args.state_dir.resolve(), args.host, args.port, args.oss_port,
        Settings(time_scale=args.time_scale, engine_interval=args.engine_interval, backend=args.backend))


if __name__ == "__main__":
    main()
