"""`localcloud`: start, stop and steer the embedded cloud.

    localcloud up [--time-scale N] [--backend containers|records]
                                        start the daemon (idempotent), write .localcloud/env
    localcloud down [--purge]           stop it (state and instances are kept unless --purge)
    localcloud image build [--force]    build the Debian 12 base image of instances (once per machine)
    localcloud status [--json]
    localcloud spot set --zone Z --instance-type T --capacity N [--price P]
    localcloud reclaim INSTANCE_ID [--notice SECONDS]
    localcloud bill [--json]
    localcloud events [--json]          the CloudMonitor custom events reported (PutCustomEvent)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import faults
from .backends import BACKENDS
from .config import default_state_dir
from .daemon import ADMIN_TOKEN_FILE, RUNTIME_FILE
from .store import private_dir

PORTS_FILE = "ports.json"
ENV_FILE = "env"
START_TIMEOUT = 30.0


class CliError(Exception):
    pass


def _free_port(*taken: int) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port


def _runtime(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / RUNTIME_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        # A daemon this process started stays a zombie after it exits until it is reaped.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie that another process (the one that started it) has not reaped yet is dead all the same.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localcloud/health", timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def running(state_dir: Path) -> dict[str, Any] | None:
    rt = _runtime(state_dir)
    if rt and _alive(rt["pid"]) and _answers(rt["port"]):
        return rt
    return None


def admin_call(state_dir: Path, route: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    rt = running(state_dir)
    if rt is None:
        raise CliError(f"localcloud is not running for {state_dir}; start it with `localcloud up`.")
    token = (state_dir / ADMIN_TOKEN_FILE).read_text().strip()
    req = urllib.request.Request(f"http://127.0.0.1:{rt['port']}/_localcloud/{route}",
                                 data=json.dumps(args or {}).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as err:
        body = json.loads(err.read() or b"{}")
        raise CliError(f"{body.get('Code', err.code)}: {body.get('Message', err.reason)}") from None


def write_env(state_dir: Path, rt: dict[str, Any]) -> Path:
    from .cloud import Cloud  # noqa: F401 - imported lazily: the CLI's other commands do not need it
    from .identities import ACCESS_KEY
    from .store import Store

    store = Store(state_dir / "state.db")
    try:
        key_id = store.kv_get("root_access_key_id")
        secret = ACCESS_KEY.find(store, key_id)["AccessKeySecret"]
        region = store.kv_get("settings")["region"]
    finally:
        store.close()
    host = "127.0.0.1" if rt["host"] in ("0.0.0.0", "") else rt["host"]
    lines = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
        "ALIBABA_CLOUD_REGION_ID": region,
        "LOCALCLOUD_ENDPOINT": f"{host}:{rt['port']}",
        "LOCALCLOUD_OSS_ENDPOINT": f"http://{host}:{rt['oss_port']}" if rt.get("oss_port") else "",
        "LOCALCLOUD_HOME": str(state_dir),
    }
    path = state_dir / ENV_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# written by `localcloud up`; source it: . .localcloud/env\n")
        f.writelines(f"export {k}={v}\n" for k, v in lines.items())
    return path


def choose_backend(asked: str | None, saved: str | None) -> str:
    """The instance backend: as asked, else as before, else containers where podman works."""
    if asked or saved:
        backend = asked or saved or "records"
        if backend == "containers":
            from .backends.containers import podman_usable
            problem = podman_usable()
            if problem:
                raise CliError(f"cannot run container instances: {problem}. Use --backend records for "
                               "instances that are records only.")
        return backend
    from .backends.containers import podman_usable
    problem = podman_usable()
    if problem is None:
        return "containers"
    print(f"localcloud: instances will be records only (no machines): {problem}.", file=sys.stderr)
    return "records"


def ensure_base_image() -> None:
    from .backends import podman_image
    if podman_image.exists():
        return
    print("localcloud: building the Debian 12 base image of instances with debootstrap (once per machine, "
          "a few minutes)...", file=sys.stderr)
    try:
        podman_image.build()
    except podman_image.ImageError as err:
        raise CliError(str(err)) from None


def up(state_dir: Path, host: str, port: int | None, oss_port: int | None, time_scale: float | None,
       engine_interval: float | None, backend: str | None = None) -> dict[str, Any]:
    private_dir(state_dir)
    rt = running(state_dir)
    if rt is None:
        ports_path = state_dir / PORTS_FILE
        saved = json.loads(ports_path.read_text()) if ports_path.exists() else {}
        chosen = {
            "host": host or saved.get("host", "127.0.0.1"),
            "port": port or saved.get("port"),
            "oss_port": oss_port or saved.get("oss_port"),
            "time_scale": time_scale or saved.get("time_scale", 1.0),
            "engine_interval": engine_interval or saved.get("engine_interval", 0.5),
            "backend": choose_backend(backend, saved.get("backend")),
        }
        if chosen["backend"] == "containers":
            ensure_base_image()
        # Free ports are picked after the (possibly minutes long) image build, and differ from each other.
        chosen["port"] = chosen["port"] or _free_port()
        chosen["oss_port"] = chosen["oss_port"] or _free_port(chosen["port"])
        ports_path.write_text(json.dumps(chosen))
        log = open(state_dir / "daemon.log", "ab")  # noqa: SIM115 - handed to the child process
        proc = subprocess.Popen(
            [sys.executable, "-m", "localcloud.daemon", "--state-dir", str(state_dir),
             "--host", chosen["host"], "--port", str(chosen["port"]), "--oss-port", str(chosen["oss_port"]),
             "--time-scale", str(chosen["time_scale"]), "--engine-interval", str(chosen["engine_interval"]),
             "--backend", chosen["backend"]],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while (rt := running(state_dir)) is None:
            if proc.poll() is not None:
                raise CliError(f"the localcloud daemon exited with {proc.returncode}; see {state_dir / 'daemon.log'}")
            if time.monotonic() > deadline:
                proc.terminate()
                raise CliError(f"the localcloud daemon did not answer within {START_TIMEOUT:.0f}s; "
                               f"see {state_dir / 'daemon.log'}")
            time.sleep(0.1)
    write_env(state_dir, rt)
    return rt


def purge_instances(state_dir: Path) -> list[str]:
    """Remove the containers, networks and custom images of the localcloud at `state_dir`."""
    import shutil

    if shutil.which("podman") is None or os.geteuid() != 0:
        return []
    from .backends.containers import purge
    from .frontdoor import remove_metadata_redirect
    return purge(state_dir, remove_metadata_redirect)


def down(state_dir: Path, timeout: float = 20.0, purge: bool = False) -> bool:
    rt = _runtime(state_dir)
    if rt is None or not _alive(rt["pid"]):
        (state_dir / RUNTIME_FILE).unlink(missing_ok=True)
        if purge:
            purge_instances(state_dir)
        return False
    if timeout > 0:
        os.kill(rt["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(rt["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
    if _alive(rt["pid"]):
        os.kill(rt["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(rt["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
    (state_dir / RUNTIME_FILE).unlink(missing_ok=True)
    if purge:
        purge_instances(state_dir)
    return True


def _print_bill(bill: dict[str, Any]) -> None:
    print(f"{'charge type':<16}{'instances':>10}{'hours':>12}{'cost (RMB)':>14}")
    for charge_type, line in bill["by_charge_type"].items():
        print(f"{charge_type:<16}{line['instances']:>10}{line['hours']:>12.3f}{line['cost']:>14.2f}")
    print(f"{'total':<16}{'':>10}{'':>12}{bill['total']:>14.2f}")
    print("(hours on the virtual clock)")


def _print_events(events: dict[str, Any]) -> None:
    if not events["events"]:
        print("no custom events")
    for event in events["events"]:
        print(f"{event['Received']}  {event['Name']}  (group {event['GroupId']}, id {event['Id']}, "
              f"from {event['Reporter']})")
        print(f"  {event['Content']}")
    print("(times on the virtual clock)")


def _print_status(status: dict[str, Any]) -> None:
    print(f"localcloud pid {status['pid']}, region {status['region']}, zones {', '.join(status['zones'])}")
    print(f"virtual clock: {status['virtual_now']} (x{status['time_scale']:g})")
    print(f"instances: {len(status['instances'])}, scaling groups: {status['scaling_groups']}")
    for i in status["instances"]:
        print(f"  {i['InstanceId']}  {i['ZoneId']}  {i['InstanceType']}  {i['Status']}  {i['SpotStrategy']}"
              f"  {i['ScalingGroupId'] or '-'}")


def _fault_line(fault: dict[str, Any]) -> str:
    if fault["target"] == "net":
        return (f"{fault['id']}: net: {fault['instance']} ({fault['address']}) cut off until {fault['ends']} "
                f"(virtual clock); connections held {fault['injected']}")
    if fault["action"] == "kill":
        what = [f"kill the sending instance at a rate of {fault['rate']:g}"]
    else:
        what = [f"{fault['code']} ({fault['status']}) at a rate of {fault['rate']:g}"] if fault["code"] else []
    what += [f"{fault['latency']:g} s of latency"] if fault["latency"] else []
    ends = f"until {fault['ends']} (virtual clock)" if fault["ends"] else "until cleared"
    limit = f", at most {fault['limit']} time(s)" if fault["limit"] else ""
    methods = f" ({', '.join(fault['methods'])})" if fault["methods"] else ""
    killed = "".join(f", killed {k['instance_id']} during {k['request']}" for k in fault["killed"])
    return (f"{fault['id']}: {fault['target']} {fault['match']}{methods}: {' and '.join(what)}, {ends}{limit}; "
            f"injected {fault['injected']}, delayed {fault['delayed']}{killed}")


def _fault(state_dir: Path, args: argparse.Namespace) -> None:
    if args.fault_command == "add":
        if problem := faults.check(args.target, args.rate, args.code, args.latency, args.duration, args.kill,
                                   args.limit, args.new):
            raise CliError(problem)
        answer = admin_call(state_dir, "fault", {"target": args.target, "rate": args.rate, "code": args.code,
                                                 "latency": args.latency, "match": args.match,
                                                 "duration": args.duration, "seed": args.seed, "kill": args.kill,
                                                 "methods": args.methods, "limit": args.limit,
                                                 "instance": args.instance, "new": args.new})
        print(json.dumps(answer["fault"]) if args.json else _fault_line(answer["fault"]))
    elif args.fault_command == "list":
        listed = admin_call(state_dir, "fault-list")
        if args.json:
            print(json.dumps(listed, indent=2))
        for fault in [] if args.json else listed["faults"]:
            print(("" if fault["active"] else "(ended) ") + _fault_line(fault))
    else:
        cleared = admin_call(state_dir, "fault-clear", {"id": args.id})["cleared"]
        if args.json:
            print(json.dumps(cleared))
            return
        print("\n".join(f"cleared {_fault_line(fault)}" for fault in cleared) or "no fault to clear")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localcloud", description="The embedded Alibaba Cloud.")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="state directory (default: $LOCALCLOUD_HOME or ./.localcloud)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the daemon if it is not running and write the env file")
    p_up.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    p_up.add_argument("--port", type=int, default=None, help="RPC port (default: a free one, kept)")
    p_up.add_argument("--oss-port", type=int, default=None, help="OSS port (default: a free one, kept)")
    p_up.add_argument("--time-scale", type=float, default=None, help="virtual seconds per real second")
    p_up.add_argument("--engine-interval", type=float, default=None, help="real seconds between engine rounds")
    p_up.add_argument("--backend", choices=BACKENDS, default=None,
                      help="what instances are: podman systemd containers (default as root with working podman) "
                           "or records only; fixed at the first start of a state directory")
    p_down = sub.add_parser("down", help="stop the daemon; state and instance containers are kept")
    p_down.add_argument("--kill", action="store_true",
                        help="SIGKILL at once, no clean shutdown (the daemon crashes; `up` starts it again)")
    p_down.add_argument("--purge", action="store_true",
                        help="also remove this cloud's instance containers, networks and custom images")
    p_image = sub.add_parser("image", help="instance images")
    image_sub = p_image.add_subparsers(dest="image_command", required=True)
    p_build = image_sub.add_parser("build", help="build the Debian 12 base image (skipped when it exists)")
    p_build.add_argument("--force", action="store_true", help="rebuild even when the image exists")
    p_status = sub.add_parser("status", help="what runs and the spot market")
    p_status.add_argument("--json", action="store_true")
    p_spot = sub.add_parser("spot", help="the spot market")
    spot_sub = p_spot.add_subparsers(dest="spot_command", required=True)
    p_set = spot_sub.add_parser("set", help="set spot capacity (and price) of an instance type")
    p_set.add_argument("--zone", default=None, help="one zone (default: every zone)")
    p_set.add_argument("--instance-type", required=True)
    p_set.add_argument("--capacity", type=int, default=None)
    p_set.add_argument("--price", type=float, default=None, help="spot price, RMB per hour")
    p_reclaim = sub.add_parser("reclaim", help="reclaim a spot instance: notice, then a kill")
    p_reclaim.add_argument("instance_id")
    p_reclaim.add_argument("--notice", type=float, default=None, help="notice in virtual seconds (default 300)")
    p_fault = sub.add_parser("fault", help="inject faults: errors and latency of the RPC or OSS endpoint")
    fault_sub = p_fault.add_subparsers(dest="fault_command", required=True)
    p_add = fault_sub.add_parser("add", help="make an endpoint fail a share of its requests, or answer slowly")
    p_add.add_argument("target", choices=faults.TARGETS,
                       help="api: the RPC endpoint; oss: the OSS endpoint; meta: the metadata service (--kill "
                            "only); net: an instance's network (--instance)")
    p_add.add_argument("--instance", default=None, help="net: the instance to cut off, for --for virtual seconds")
    p_add.add_argument("--rate", type=float, default=0.0, help="share of the matching requests that fail (0-1)")
    p_add.add_argument("--code", default=None,
                       help="the error: " + "; ".join(f"{target}: {', '.join(codes)}"
                                                      for target, codes in faults.ERRORS.items())
                            + " (default: the first)")
    p_add.add_argument("--latency", type=float, default=0.0, help="real seconds added to each matching answer")
    p_add.add_argument("--match", default="*",
                       help="glob on product:Action (api), bucket/key (oss) or the path (meta); default *")
    p_add.add_argument("--for", dest="duration", type=float, default=None,
                       help="virtual seconds the fault lasts (default: until cleared)")
    p_add.add_argument("--seed", type=int, default=None, help="the seed of the fault's random draws")
    p_add.add_argument("--kill", action="store_true",
                       help="oss, meta: kill the instance that sent a matching request, which goes unanswered")
    p_add.add_argument("--new", action="store_true",
                       help="a kill strikes only instances launched after the fault is added: with meta, a new "
                            "instance dies in its boot; with oss, in its mount (its first requests)")
    p_add.add_argument("--method", dest="methods", action="append", default=None,
                       help="only requests of this HTTP method (repeatable), e.g. PUT")
    p_add.add_argument("--limit", type=int, default=None, help="strike at most this often (a kill: once)")
    p_add.add_argument("--json", action="store_true", help="print the fault as JSON")
    p_list = fault_sub.add_parser("list", help="the faults and what each injected")
    p_list.add_argument("--json", action="store_true")
    p_clear = fault_sub.add_parser("clear", help="remove one fault, or every fault")
    p_clear.add_argument("id", nargs="?", default=None)
    p_clear.add_argument("--json", action="store_true", help="print the faults removed as JSON")
    p_bill = sub.add_parser("bill", help="cost so far per charge type")
    p_bill.add_argument("--json", action="store_true")
    p_events = sub.add_parser("events", help="the CloudMonitor custom events reported so far")
    p_events.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    state_dir = (args.state_dir or default_state_dir()).resolve()
    try:
        if args.command == "up":
            rt = up(state_dir, args.host, args.port, args.oss_port, args.time_scale, args.engine_interval,
                    args.backend)
            print(f"localcloud is up (pid {rt['pid']}): RPC {rt['host']}:{rt['port']}, OSS port {rt['oss_port']}, "
                  f"{rt.get('backend', 'records')} instances")
            print(f"credentials and endpoints: . {state_dir / ENV_FILE}")
        elif args.command == "down":
            stopped = down(state_dir, timeout=0 if args.kill else 20.0, purge=args.purge)
            done = "localcloud killed" if args.kill else "localcloud stopped"
            print(done if stopped else "localcloud was not running")
        elif args.command == "image":
            from .backends import podman_image
            from .images import SYSTEM_IMAGES
            try:
                name = podman_image.build(force=args.force)
            except podman_image.ImageError as err:
                raise CliError(str(err)) from None
            print(f"{name}: Debian 12 (bookworm), the system image {SYSTEM_IMAGES[0]['ImageId']}")
        elif args.command == "status":
            if running(state_dir) is None:
                print(f"localcloud is not running ({state_dir})")
                return 3
            status = admin_call(state_dir, "status")
            print(json.dumps(status, indent=2) if args.json else "", end="" if not args.json else "\n")
            if not args.json:
                _print_status(status)
        elif args.command == "spot":
            if args.capacity is None and args.price is None:
                raise CliError("give --capacity, --price or both")
            result = admin_call(state_dir, "spot", {"zone": args.zone, "instance_type": args.instance_type,
                                                    "capacity": args.capacity, "price": args.price})
            for row in result["market"]:
                print(f"{row['zone']}  {row['instance_type']}  capacity {row['capacity']} (in use {row['in_use']})"
                      f"  spot {row['spot_price']:g} RMB/h")
        elif args.command == "reclaim":
            result = admin_call(state_dir, "reclaim", {"instance_id": args.instance_id, "notice": args.notice})
            print(f"{result['instance_id']}: notice at {result['notice_at']}, terminated at {result['terminate_at']}"
                  " (virtual clock)")
        elif args.command == "fault":
            _fault(state_dir, args)
        elif args.command in ("bill", "events"):
            answer = admin_call(state_dir, args.command)
            if args.json:
                print(json.dumps(answer, indent=2))
            else:
                {"bill": _print_bill, "events": _print_events}[args.command](answer)
    except CliError as err:
        print(f"localcloud: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
