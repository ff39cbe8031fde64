"""s3fs mounts of localcloud buckets, on the host and inside a podman container.

The container image (Debian bookworm with s3fs, built with debootstrap: no registry is reachable)
is built once per machine and reused while `podman image exists` says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
S3FS_IMAGE = "localhost/localcloud-s3fs:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
PODMAN_BRIDGE = "10.88.0.1"


def require_mount_tools(container: bool) -> None:
    """Skip, saying why, where s3fs mounts cannot run (they need root, FUSE, s3fs and for containers podman)."""
    if os.geteuid() != 0:
        pytest.skip("s3fs mounts need root (FUSE and rootful podman)")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse on this machine")
    if shutil.which("s3fs") is None:
        pytest.skip("s3fs is not installed (apt-get install s3fs)")
    if container:
        for tool in ("podman", "debootstrap"):
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is not installed (apt-get install podman runc debootstrap)")
        setup = subprocess.run([str(ROOT / "scripts" / "setup-podman.sh")], capture_output=True, text=True)
        if setup.returncode != 0:
            pytest.skip(f"podman cannot run containers here: {setup.stderr.strip()}")


def ensure_s3fs_image() -> str:
    """The image with s3fs, built with debootstrap the first time on this machine."""
    if subprocess.run(["podman", "image", "exists", S3FS_IMAGE]).returncode == 0:
        return S3FS_IMAGE
    with tempfile.TemporaryDirectory(prefix="s3fs-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=s3fs,ca-certificates", "bookworm",
                        str(rootfs), DEBIAN_MIRROR], check=True, capture_output=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["podman", "import", "-q", "-", S3FS_IMAGE], stdin=tar.stdout, check=True,
                       capture_output=True)
        if tar.wait() != 0:
            raise RuntimeError("tar of the debootstrap rootfs failed")
    return S3FS_IMAGE


def write_passwd(path: Path, access_key_id: str, secret: str) -> Path:
    path.write_text(f"{access_key_id}:{secret}\n")
    path.chmod(0o600)
    return path


def mount(bucket: str, mountpoint: Path, url: str, passwd: Path, *options: str) -> None:
    """Mount with s3fs and wait until the mount answers; options like `use_path_request_style`, `sigv2`."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    opts = ",".join([f"url={url}", f"passwd_file={passwd}", "dbglevel=warn", *options])
    subprocess.run(["s3fs", bucket, str(mountpoint), "-o", opts], check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + 20
    while not os.path.ismount(mountpoint):
        if time.monotonic() > deadline:
            raise RuntimeError(f"s3fs did not mount {bucket} at {mountpoint}")
        time.sleep(0.1)


def unmount(mountpoint: Path) -> None:
    subprocess.run(["fusermount", "-u", str(mountpoint)], check=False, capture_output=True)
    if os.path.ismount(mountpoint):
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)
    deadline = time.monotonic() + 20
    while os.path.ismount(mountpoint) and time.monotonic() < deadline:
        time.sleep(0.1)
