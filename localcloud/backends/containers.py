"""Instances as rootful podman systemd containers.

Each instance is a container named after its instance id, booting /sbin/init from the image the
instance was launched from, with the instance's PrivateIpAddress on a podman network made for its
vSwitch (subnet = the vSwitch CIDR; the gateway is the vSwitch's last usable-but-reserved address,
which RunInstances never hands out). Everything localcloud makes is labelled with its state
directory, so two localclouds on one host never touch each other's containers, networks or images,
and a restarted daemon finds its machines again by name and label.

Podman calls take from a fraction of a second to many seconds, so every request queues an
operation that a worker thread per instance carries out in order (a reboot is a stop then a start);
`observe` answers from the queue and a cached `podman ps`, never waiting on podman.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import images, instances, network
from . import podman_image
from .base import Instance, InstanceBackend

if TYPE_CHECKING:
    from ..cloud import Cloud

log = logging.getLogger("localcloud.containers")

STATE_LABEL = "localcloud.state-dir"
INSTANCE_LABEL = "localcloud.instance"
VSWITCH_LABEL = "localcloud.vswitch"
IMAGE_LABEL = "localcloud.image"
CUSTOM_IMAGE_REPOSITORY = "localhost/localcloud-image"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
STOP_TIMEOUT_SECONDS = 30
PS_CACHE_SECONDS = 0.5
BOOT_PROBE_INTERVAL = 0.25
# What the instance status is while an operation is under way.
TRANSITIONAL = {"create": "Pending", "start": "Starting", "stop": "Stopping", "kill": "Stopping",
                "destroy": "Stopping"}
# pip settings an instance inherits from the host (`pip config list`).
PIP_KEYS = ("index-url", "extra-index-url", "find-links", "trusted-host", "constraint", "timeout", "default-timeout",
            "cert")

NetworkHook = Callable[[str, str], None]


class PodmanError(Exception):
    pass


def podman(*args: str, timeout: float | None = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise PodmanError(f"podman {args[0]} {' '.join(args[1:3])} failed: {proc.stderr.strip()[-1000:]}")
    return proc


# How long a new instance waits for its address to be let go by a released instance's container.
ADDRESS_WAIT_SECONDS = 120


def network_name(vswitch_id: str) -> str:
    return f"lc-{vswitch_id}"


def gateway_of(cidr: str) -> str:
    """The vSwitch's gateway: the second-to-last address, one of the three ECS reserves at the end."""
    network = ipaddress.ip_network(cidr, strict=False)
    return str(network.broadcast_address - 1)


def custom_image_name(image_id: str) -> str:
    return f"{CUSTOM_IMAGE_REPOSITORY}:{image_id}"


def podman_usable() -> str | None:
    """None when rootful podman can run containers here; otherwise why not."""
    import os
    import shutil

    if os.geteuid() != 0:
        return "container instances need root (rootful podman)"
    for tool in ("podman", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run scripts/install-system.sh as root)"
    try:
        podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60)
    except (PodmanError, subprocess.TimeoutExpired) as err:
        return f"podman does not work here: {err}"
    return None


def _pip_settings() -> dict[str, str]:
    """The host's pip settings (environment over files, as pip itself ranks them)."""
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found: dict[str, tuple[int, str]] = {}
    for line in out.splitlines():
        name, _, value = line.partition("=")
        scope, _, key = name.rpartition(".")
        if key not in PIP_KEYS:
            continue
        rank = 2 if scope.startswith(":env:") else 1
        if rank >= found.get(key, (0, ""))[0]:
            found[key] = (rank, value.strip().strip("'\""))
    return {k: v for k, (_, v) in found.items()}


def _local_path(location: str) -> str | None:
    """The host directory a pip location needs mounted (a file:// index mounts its parent of `simple`)."""
    if location.startswith("file://"):
        path = Path(urlsplit(location).path)
        return str(path.parent if path.name == "simple" else path)
    if location.startswith("/"):
        return location
    return None


def pip_setup(state_dir: Path) -> list[str]:
    """podman options that give an instance the host's pip settings and its local package stores."""
    settings = _pip_settings()
    if not settings:
        return []
    mounts: set[str] = set()
    lines = ["[global]"]
    for key, value in settings.items():
        if key == "cert":
            # The image trusts the host's bundle (see podman_image); point pip at the image's own.
            value = HOST_CA_BUNDLE
        elif key in ("find-links", "extra-index-url", "index-url", "constraint"):
            for location in value.split():
                path = _local_path(location)
                if path and Path(path).exists():
                    mounts.add(path)
        lines.append(f"{key} = {value}")
    conf = state_dir / "instance-pip.conf"
    conf.write_text("\n".join(lines) + "\n")
    options = ["-v", f"{conf}:/etc/pip.conf:ro"]
    for path in sorted(mounts):
        options += ["-v", f"{path}:{path}:ro"]
    return options


@dataclass
class Capture:
    started: float
    done: bool = False
    error: str | None = None


@dataclass
class Machine:
    """What this process knows about one instance's container beyond `podman ps`."""

    queue: list[tuple[str, Instance]] = field(default_factory=list)
    working: bool = False
    booted: bool = False
    probing: bool = False
    failed: str | None = None
    started_here: bool = False


class ContainersBackend(InstanceBackend):
    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.state_dir = Path(cloud.state_dir)
        self.label = f"{STATE_LABEL}={self.state_dir}"
        self._lock = threading.Lock()
        self._network_lock = threading.Lock()
        self._machines: dict[str, Machine] = {}
        self._captures: dict[str, Capture] = {}
        self._ps: tuple[float, dict[str, str]] = (0.0, {})
        self._on_network_up: NetworkHook | None = None
        self._on_network_down: NetworkHook | None = None
        self._pip_options: list[str] | None = None
        self._subnets_served: dict[str, str] = {}  # vSwitch id -> CIDR, for networks served now

    # -- network services (the daemon's front door and DNS on each gateway) --

    def serve_networks(self, on_up: NetworkHook, on_down: NetworkHook) -> None:
        """Call `on_up(gateway, cidr)` for every network of this cloud, now and as they are made."""
        self._on_network_up, self._on_network_down = on_up, on_down
        names = podman("network", "ls", "--filter", f"label={self.label}", "--format", "{{.Name}}").stdout.split()
        for name in names:
            for subnet in self._subnets(name):
                self._subnets_served[name.removeprefix("lc-")] = subnet
                on_up(gateway_of(subnet), subnet)

    def _subnets(self, name: str) -> list[str]:
        info = json.loads(podman("network", "inspect", name).stdout or "[]")
        return [s["subnet"] for net in info for s in net.get("subnets", [])]

    def _ensure_network(self, vswitch_id: str, cidr: str) -> str:
        name = network_name(vswitch_id)
        gateway = gateway_of(cidr)
        with self._network_lock:
            if podman("network", "exists", name, check=False).returncode != 0:
                # DNS is ours (localcloud.dns on the gateway), not podman's: it must answer for aliyuncs.com.
                podman("network", "create", "--subnet", cidr, "--gateway", gateway, "--disable-dns",
                       "--label", self.label, "--label", f"{VSWITCH_LABEL}={vswitch_id}", name)
                log.info("made network %s (%s, gateway %s)", name, cidr, gateway)
            self._subnets_served[vswitch_id] = cidr
            if self._on_network_up:
                self._on_network_up(gateway, cidr)
        return gateway

    def _release_network(self, vswitch_id: str, leaving: str = "") -> None:
        name = network_name(vswitch_id)
        with self._network_lock:
            # An instance launched into the vSwitch may have no container yet (its create is queued):
            # the network and its front door stay while any instance of the vSwitch exists.
            if instances.in_vswitch(self.cloud.store, vswitch_id, but_not=leaving):
                return
            if podman("network", "exists", name, check=False).returncode == 0:
                if podman("ps", "-a", "-q", "--filter", f"network={name}").stdout.split():
                    return
                podman("network", "rm", name, check=False)
                log.info("removed network %s (no instances left)", name)
            # Also when something else (a `podman network prune`) removed the network first.
            cidr = self._subnets_served.pop(vswitch_id, None)
            if cidr and self._on_network_down:
                self._on_network_down(gateway_of(cidr), cidr)

    # -- the instance lifecycle --

    def _machine(self, instance_id: str) -> Machine:
        return self._machines.setdefault(instance_id, Machine())

    def _enqueue(self, op: str, instance: Instance, preempt: bool = False) -> None:
        instance_id = instance["InstanceId"]
        with self._lock:
            machine = self._machine(instance_id)
            if preempt and machine.queue:
                # Keep the operation under way; what was still waiting is moot.
                machine.queue = machine.queue[:1] if machine.working else []
            machine.queue.append((op, dict(instance)))
            if op in ("create", "start"):
                machine.booted, machine.started_here, machine.failed = False, True, None
            if machine.working:
                return
            machine.working = True
        threading.Thread(target=self._work, args=(instance_id,), name=f"podman-{instance_id}", daemon=True).start()

    def _work(self, instance_id: str) -> None:
        while True:
            with self._lock:
                machine = self._machines[instance_id]
                if not machine.queue:
                    machine.working = False
                    return
                op, instance = machine.queue[0]
            try:
                getattr(self, f"_do_{op}")(instance)
            except Exception as err:
                log.error("%s of %s failed: %s", op, instance_id, err)
                with self._lock:
                    machine.failed = str(err)
            with self._lock:
                machine.queue.pop(0)
                self._ps = (0.0, {})
                if op == "destroy" and not machine.queue:
                    del self._machines[instance_id]
                    return

    def _image_for(self, image_id: str) -> str:
        if images.is_custom(self.cloud.store, image_id):
            return custom_image_name(image_id)
        return podman_image.build()

    def _do_create(self, instance: Instance) -> None:
        instance_id = instance["InstanceId"]
        vswitch = network.VSWITCH.find(self.cloud.store, instance["VSwitchId"])
        if vswitch is None:
            raise PodmanError(f"the vSwitch {instance['VSwitchId']} is gone")
        gateway = self._ensure_network(instance["VSwitchId"], vswitch["CidrBlock"])
        if self._pip_options is None:
            self._pip_options = pip_setup(self.state_dir)
        image = self._image_for(instance["ImageId"])
        # A released instance's address is free at once, but its container (removed by another worker)
        # may hold it a little longer: wait for podman to let it go.
        deadline = time.monotonic() + ADDRESS_WAIT_SECONDS
        while True:
            podman("rm", "-f", "-t", "0", instance_id, check=False)
            try:
                podman("run", "-d", "--name", instance_id, "--hostname", instance.get("HostName") or instance_id,
                       "--systemd=always", "--network", network_name(instance["VSwitchId"]),
                       "--ip", instance["PrivateIpAddress"], "--dns", gateway, "--dns-search", ".",
                       "--device", "/dev/fuse", "--cap-add", "SYS_ADMIN",
                       # An ECS instance is a VM whose root may configure its own network (local addresses,
                       # routes); containers lack that unless granted.
                       "--cap-add", "NET_ADMIN",
                       "--stop-timeout", str(STOP_TIMEOUT_SECONDS),
                       "--label", self.label, "--label", f"{INSTANCE_LABEL}={instance_id}",
                       "--label", f"{VSWITCH_LABEL}={instance['VSwitchId']}",
                       *self._pip_options, image, "/sbin/init")
                return
            except PodmanError as err:
                if "already allocated" not in str(err) or time.monotonic() > deadline:
                    raise
                log.info("%s: its address %s is still held by a removed container; retrying", instance_id,
                         instance["PrivateIpAddress"])
                time.sleep(2)

    def _do_start(self, instance: Instance) -> None:
        instance_id = instance["InstanceId"]
        if podman("container", "exists", instance_id, check=False).returncode != 0:
            log.warning("%s has no container (removed outside localcloud?); making a fresh one from its image",
                        instance_id)
            self._do_create(instance)
            return
        podman("start", instance_id)

    def _do_stop(self, instance: Instance) -> None:
        podman("stop", "-t", str(STOP_TIMEOUT_SECONDS), instance["InstanceId"], timeout=STOP_TIMEOUT_SECONDS + 60)

    def _do_kill(self, instance: Instance) -> None:
        # Power loss: SIGKILL to every process, no shutdown; a stopped container is left as it is.
        podman("kill", instance["InstanceId"], check=False)

    def _do_destroy(self, instance: Instance) -> None:
        podman("rm", "-f", "-t", "0", instance["InstanceId"])
        if instance.get("VSwitchId"):
            self._release_network(instance["VSwitchId"], instance["InstanceId"])

    def create(self, instance: Instance) -> None:
        self._enqueue("create", instance)

    def start(self, instance: Instance) -> None:
        self._enqueue("start", instance)

    def stop(self, instance: Instance, force: bool) -> None:
        self._enqueue("kill" if force else "stop", instance)

    def kill(self, instance: Instance) -> None:
        self._enqueue("kill", instance, preempt=True)

    def destroy(self, instance: Instance) -> None:
        self._enqueue("destroy", instance, preempt=True)

    def _container_states(self) -> dict[str, str]:
        with self._lock:
            taken, states = self._ps
        if time.monotonic() - taken < PS_CACHE_SECONDS:
            return states
        out = podman("ps", "-a", "--filter", f"label={self.label}", "--format", "json").stdout
        states = {c["Names"][0]: c["State"] for c in json.loads(out or "[]")}
        with self._lock:
            self._ps = (time.monotonic(), states)
        return states

    def observe(self, instance: Instance) -> str:
        instance_id = instance["InstanceId"]
        with self._lock:
            machine = self._machine(instance_id)
            if machine.queue:
                return TRANSITIONAL[machine.queue[0][0]]
            failed = machine.failed
        state = self._container_states().get(instance_id)
        if state is None:
            # The daemon stopped before it made the container: make it now. Not for a record already released
            # (an endpoint waiting for the death of an instance it killed while Pending asks about it).
            if failed is None and instance["Status"] == "Pending" and \
                    instances.INSTANCE.find(self.cloud.store, instance_id) is not None:
                self.create(instance)
                return "Pending"
            return "Stopped"
        if state != "running":
            with self._lock:
                machine.booted = False
            return {"created": "Pending", "configured": "Pending", "stopping": "Stopping"}.get(state, "Stopped")
        with self._lock:
            if not machine.booted and not machine.started_here and instance["Status"] == "Running":
                # Found running after a daemon restart: it booted long ago.
                machine.booted = True
            if machine.booted:
                return "Running"
            probe = not machine.probing
            machine.probing = True
        if probe:
            threading.Thread(target=self._probe_boot, args=(instance_id,), name=f"boot-{instance_id}",
                             daemon=True).start()
        return "Starting"

    def _probe_boot(self, instance_id: str) -> None:
        """Wait until systemd says the system is up.

        `degraded` counts as up: the boot has finished and only some unit failed (a broken user
        service, failing user-data); ECS reports such an instance Running too.
        """
        try:
            while True:
                proc = podman("exec", instance_id, "systemctl", "is-system-running", check=False, timeout=60)
                answer = proc.stdout.strip()
                if answer in ("running", "degraded"):
                    with self._lock:
                        self._machine(instance_id).booted = True
                    return
                gone = answer in ("stopping", "offline") or (proc.returncode != 0 and not answer)
                if gone and podman("container", "inspect", "--format", "{{.State.Running}}", instance_id,
                                   check=False).stdout.strip() != "true":
                    return
                time.sleep(BOOT_PROBE_INTERVAL)
        except subprocess.TimeoutExpired:
            log.warning("systemctl in %s did not answer", instance_id)
        finally:
            with self._lock:
                self._machine(instance_id).probing = False

    # -- images --

    def create_image(self, instance: Instance, image: dict[str, Any]) -> None:
        capture = Capture(time.monotonic())
        with self._lock:
            self._captures[image["ImageId"]] = capture

        def commit() -> None:
            try:
                podman("commit", "-q", "--change", f'LABEL {STATE_LABEL}="{self.state_dir}"',
                       "--change", f"LABEL {IMAGE_LABEL}={image['ImageId']}", instance["InstanceId"],
                       custom_image_name(image["ImageId"]), timeout=1800)
            except Exception as err:
                capture.error = str(err)
            capture.done = True

        threading.Thread(target=commit, name=f"commit-{image['ImageId']}", daemon=True).start()

    def image_progress(self, image: dict[str, Any]) -> int:
        with self._lock:
            capture = self._captures.get(image["ImageId"])
        if capture is None:
            # Started before a daemon restart: the image is there or the capture was lost.
            if podman_image.exists(custom_image_name(image["ImageId"])):
                return 100
            raise PodmanError(f"the capture of {image['ImageId']} was interrupted; create the image again")
        if capture.error:
            raise PodmanError(capture.error)
        if capture.done:
            return 100
        # Commits of a few hundred MB take seconds; report time passing, never 100 before the end.
        return min(90, 10 + int((time.monotonic() - capture.started) * 10))

    def delete_image(self, image: dict[str, Any]) -> None:
        def remove() -> None:
            proc = podman("rmi", custom_image_name(image["ImageId"]), check=False)
            if proc.returncode != 0:
                log.warning("image %s stays until its instances are gone: %s", image["ImageId"], proc.stderr.strip())

        threading.Thread(target=remove, name=f"rmi-{image['ImageId']}", daemon=True).start()


def purge(state_dir: Path, on_network_gone: NetworkHook) -> list[str]:
    """Remove every container, network and custom image of the localcloud at `state_dir`.

    `on_network_gone(gateway, cidr)` is called for each network before it goes, to undo what the
    daemon set up for it on the host (the metadata redirect of localcloud.frontdoor).
    """
    label = f"label={STATE_LABEL}={state_dir}"
    removed = []
    containers = podman("ps", "-a", "-q", "--filter", label, check=False).stdout.split()
    if containers:
        podman("rm", "-f", "-t", "0", *containers, check=False)
        removed.append(f"{len(containers)} container(s)")
    networks = podman("network", "ls", "-q", "--filter", label, check=False).stdout.split()
    if networks:
        for network in networks:
            info = json.loads(podman("network", "inspect", network, check=False).stdout or "[]")
            for subnet in (s["subnet"] for net in info for s in net.get("subnets", [])):
                on_network_gone(gateway_of(subnet), subnet)
        podman("network", "rm", "-f", *networks, check=False)
        removed.append(f"{len(networks)} network(s)")
    image_ids = podman("images", "-q", "--filter", label, check=False).stdout.split()
    if image_ids:
        podman("rmi", "-f", *sorted(set(image_ids)), check=False)
        removed.append(f"{len(set(image_ids))} image(s)")
    return removed
