"""The podman base image that container instances boot: Debian 12 built with debootstrap.

No registry is reachable on the machines this runs on, so the image is made from Debian's packages
(`debootstrap`, then `podman import`) once per machine and reused while `podman image exists`
says it is there. It boots systemd as PID 1 and carries what the ECS conventions need: a unit
that runs user-data once per instance id (cloud-init's semantics for a shell script), SSH host
keys made at first boot (not baked into every instance) and the host's CA bundle, so that HTTPS
through a TLS-intercepting proxy verifies inside instances.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("localcloud.podman_image")

BASE_IMAGE = "localhost/localcloud-debian:12"
# Bumped whenever what goes into the image changes, so that a cached older build is replaced.
RECIPE_VERSION = "2"
RECIPE_LABEL = "localcloud.recipe"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Not `fuse`: it conflicts with fuse3, which s3fs pulls in.
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-pip", "python3-venv", "sudo", "procps",
            "iproute2", "iputils-ping", "s3fs", "ca-certificates", "openssh-server", "curl", "less")

USER_DATA_SCRIPT = r"""#!/bin/sh
# Runs the instance's user-data once per instance id, as cloud-init does for a shell script:
# an image baked from a configured instance does not run its template's user-data again.
set -u
MD=http://100.100.100.200/latest
STATE=/var/lib/localcloud
mkdir -p "$STATE"
exec >>/var/log/localcloud-user-data.log 2>&1

token=""
for _ in $(seq 1 60); do
    token=$(curl -sf --connect-timeout 2 -m 10 -X PUT -H 'X-aliyun-ecs-metadata-token-ttl-seconds: 300' \
        "$MD/api/token") && break
    sleep 1
done
if [ -z "$token" ]; then
    echo "user-data: the metadata service did not answer" >&2
    exit 1
fi
get() { curl -s --connect-timeout 2 -m 30 -H "X-aliyun-ecs-metadata-token: $token" "$@"; }
id=$(get -f "$MD/meta-data/instance-id") || exit 1
done_marker="$STATE/user-data.$id.done"
[ -e "$done_marker" ] && exit 0
status=$(get -o "$STATE/user-data" -w '%{http_code}' "$MD/user-data")
if [ "$status" = 404 ] || { [ "$status" = 200 ] && [ ! -s "$STATE/user-data" ]; }; then
    touch "$done_marker"
    exit 0
fi
if [ "$status" != 200 ]; then
    echo "user-data: the metadata service answered $status; trying again at the next boot" >&2
    exit 1
fi
if [ "$(head -c 2 "$STATE/user-data")" != "#!" ]; then
    echo "user-data: not a script (no #! line); only shell scripts are run" >&2
    touch "$done_marker"
    exit 0
fi
chmod 700 "$STATE/user-data"
echo "user-data: running for $id at $(date -u +%FT%TZ)"
# The marker goes first: a script that reboots the machine must not run again.
touch "$done_marker"
"$STATE/user-data"
rc=$?
echo "user-data: exited $rc"
exit $rc
"""

USER_DATA_UNIT = """[Unit]
Description=Run the instance's user-data once (cloud-init semantics for shell scripts)
After=network-online.target localcloud-ssh-keys.service
Wants=network-online.target

[Service]
# Not a oneshot: the boot does not wait for user-data (as on ECS, where the instance is Running
# while its user-data still runs); a failing script shows as a failed unit.
Type=exec
ExecStart=/usr/local/sbin/localcloud-user-data
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""

SSH_KEYS_UNIT = """[Unit]
Description=Make this instance's own SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target ssh.service
"""

# Units that only make sense on a real machine and fail (or wait for nothing) in a container.
MASKED_UNITS = ("systemd-remount-fs.service", "getty.target", "console-getty.service", "sys-kernel-config.mount",
                "systemd-networkd-wait-online.service", "systemd-timesyncd.service")


class ImageError(Exception):
    """Building or finding the base image failed; the message says what to do."""


def exists(name: str = BASE_IMAGE) -> bool:
    """Whether the image is there (the base image: built from this recipe)."""
    if name != BASE_IMAGE:
        return subprocess.run(["podman", "image", "exists", name], capture_output=True).returncode == 0
    proc = subprocess.run(["podman", "image", "inspect", "--format", f'{{{{index .Labels "{RECIPE_LABEL}"}}}}',
                           name], capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.strip() == RECIPE_VERSION


def _run(argv: list[str], what: str, **kwargs: Any) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise ImageError(f"{what} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def _configure(rootfs: Path) -> None:
    """Make the debootstrapped tree a bootable instance image."""
    (rootfs / "usr/local/sbin/localcloud-user-data").write_text(USER_DATA_SCRIPT)
    (rootfs / "usr/local/sbin/localcloud-user-data").chmod(0o755)
    units = rootfs / "etc/systemd/system"
    (units / "localcloud-user-data.service").write_text(USER_DATA_UNIT)
    (units / "localcloud-ssh-keys.service").write_text(SSH_KEYS_UNIT)
    for target, unit in (("multi-user.target", "localcloud-user-data.service"),
                         ("multi-user.target", "localcloud-ssh-keys.service")):
        wants = units / f"{target}.wants"
        wants.mkdir(exist_ok=True)
        link = wants / unit
        if not link.is_symlink():
            link.symlink_to(f"/etc/systemd/system/{unit}")
    for unit in MASKED_UNITS:
        masked = units / unit
        masked.unlink(missing_ok=True)
        masked.symlink_to("/dev/null")
    # Each instance gets its own host keys and machine id at first boot.
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    if HOST_CA_BUNDLE.exists():
        # The host's bundle holds the CA of a TLS-intercepting proxy when there is one.
        extra = rootfs / "usr/local/share/ca-certificates/localcloud-host-bundle.crt"
        extra.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, extra)
        _run(["chroot", str(rootfs), "update-ca-certificates"], "update-ca-certificates in the image")
    apt_cache = rootfs / "var/cache/apt/archives"
    for deb in apt_cache.glob("*.deb"):
        deb.unlink()


def build(name: str = BASE_IMAGE, mirror: str = DEBIAN_MIRROR, force: bool = False) -> str:
    """Build the base image unless it exists (about a minute on a fresh machine); returns its name."""
    if not force and exists(name):
        return name
    for tool in ("podman", "debootstrap"):
        if shutil.which(tool) is None:
            raise ImageError(f"{tool} is not installed; run scripts/install-system.sh (as root).")
    log.info("building %s with debootstrap from %s (once per machine)", name, mirror)
    with tempfile.TemporaryDirectory(prefix="localcloud-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", DEBIAN_SUITE, str(rootfs),
              mirror], "debootstrap")
        _configure(rootfs)
        tar = subprocess.Popen(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c", "."],
                               stdout=subprocess.PIPE)
        try:
            _run(["podman", "import", "-q", "--change", 'CMD ["/sbin/init"]', "--change", "STOPSIGNAL=SIGRTMIN+3",
                  "--change", f"LABEL {RECIPE_LABEL}={RECIPE_VERSION}", "-", name], "podman import",
                 stdin=tar.stdout)
        finally:
            if tar.stdout:
                tar.stdout.close()
            tar.wait()
    log.info("built %s", name)
    return name
