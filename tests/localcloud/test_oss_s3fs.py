"""Real s3fs FUSE mounts of localcloud buckets: on the host, and in a podman container over the bridge."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .oss_support import root_keys, s3_client, unique
from .s3fs_support import PODMAN_BRIDGE, ensure_s3fs_image, mount, require_mount_tools, unmount, write_passwd

pytestmark = pytest.mark.containers
MB = 1024 * 1024


def write_checkpoint_tree(root: Path) -> None:
    """What a training run leaves under its output dir: checkpoints of small and mid-sized files."""
    for step in (10, 20):
        ckpt = root / "output" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        (ckpt / "adapter_model.safetensors").write_bytes(os.urandom(300_000))
        (ckpt / "optimizer.pt").write_bytes(os.urandom(3 * MB))
        (ckpt / "rng_state.pth").write_bytes(os.urandom(14_000))
    (root / "output" / "logging.jsonl").write_text('{"loss": 1.0}\n')


def digests(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(MB):
                    h.update(chunk)
            out[str(path.relative_to(root))] = h.hexdigest()
    return out


def write_big(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size // (8 * MB)):
            f.write(os.urandom(8 * MB))


# sigv4 forced, and s3fs's default (what the ossfs_mount role mounts with): it tries V4 first.
@pytest.mark.parametrize("signature", ["sigv4", "default"])
def test_s3fs_on_the_host_keeps_a_checkpoint_tree(make_localcloud: Any, tmp_path: Path, signature: str) -> None:
    require_mount_tools(container=False)
    cloud = make_localcloud()
    bucket = unique("s3fs")
    s3_client(cloud, root_keys(cloud)).create_bucket(Bucket=bucket)
    passwd = write_passwd(tmp_path / "passwd", cloud.access_key_id, cloud.access_key_secret)
    mnt = tmp_path / "mnt"
    options = ("use_path_request_style", *([signature] if signature != "default" else []))
    mount(bucket, mnt, cloud.oss_endpoint, passwd, *options)
    try:
        write_checkpoint_tree(mnt)
        (mnt / "output" / "checkpoint-20").rename(mnt / "output" / "checkpoint-20-best")
        write_big(mnt / "output" / "big.bin", (200 if signature == "sigv4" else 24) * MB)
        written = digests(mnt)
        assert "output/checkpoint-20-best/optimizer.pt" in written
        assert not any(k.startswith("output/checkpoint-20/") for k in written)
    finally:
        unmount(mnt)
    mount(bucket, mnt, cloud.oss_endpoint, passwd, *options)
    try:
        assert digests(mnt) == written
    finally:
        unmount(mnt)
    keys = [o["Key"] for o in s3_client(cloud, root_keys(cloud)).list_objects_v2(Bucket=bucket)["Contents"]]
    assert "output/checkpoint-20-best/trainer_state.json" in keys
    assert not [k for k in keys if k.startswith("output/checkpoint-20/")]


def test_s3fs_forced_to_sigv2_is_refused_as_oss_refuses_it(make_localcloud: Any, tmp_path: Path) -> None:
    """OSS's S3-compatible API takes AWS SigV2 only where Alibaba's support enabled it (EC 0002-00000032)."""
    require_mount_tools(container=False)
    cloud = make_localcloud()
    bucket = unique("s3fs")
    s3_client(cloud, root_keys(cloud)).create_bucket(Bucket=bucket)
    passwd = write_passwd(tmp_path / "passwd", cloud.access_key_id, cloud.access_key_secret)
    (tmp_path / "mnt").mkdir()
    options = f"url={cloud.oss_endpoint},passwd_file={passwd},use_path_request_style,sigv2,dbglevel=info"
    refused = subprocess.run(["s3fs", bucket, str(tmp_path / "mnt"), "-f", "-o", options],
                             capture_output=True, text=True, timeout=60)
    # s3fs checks the bucket before it serves the mount, and ends there (with status 0).
    assert not os.path.ismount(tmp_path / "mnt")
    output = refused.stdout + refused.stderr
    assert "Check bucket failed" in output and "<EC>0002-00000032</EC>" in output, output


CONTAINER_SCRIPT = r"""
set -eu
printf '%s' "$PASSWD" > /etc/passwd-s3fs && chmod 600 /etc/passwd-s3fs
mkdir -p /mnt/oss /mnt/vhost
s3fs "$BUCKET" /mnt/oss -o url="$URL",use_path_request_style,passwd_file=/etc/passwd-s3fs,sigv4
mkdir -p /mnt/oss/output/checkpoint-10 /mnt/oss/output/checkpoint-20
for step in 10 20; do
  head -c 3000000 /dev/urandom > /mnt/oss/output/checkpoint-$step/optimizer.pt
  echo "{\"global_step\": $step}" > /mnt/oss/output/checkpoint-$step/trainer_state.json
done
mv /mnt/oss/output/checkpoint-20 /mnt/oss/output/checkpoint-20-best
head -c 209715200 /dev/urandom > /mnt/oss/output/big.bin
(cd /mnt/oss && find . -type f | sort | xargs sha256sum) > /tmp/written.sha256
umount /mnt/oss
s3fs "$BUCKET" /mnt/oss -o url="$URL",use_path_request_style,passwd_file=/etc/passwd-s3fs
(cd /mnt/oss && sha256sum -c --quiet /tmp/written.sha256)
umount /mnt/oss
s3fs "$BUCKET" /mnt/vhost -o url="$VHOST_URL",passwd_file=/etc/passwd-s3fs,sigv4
(cd /mnt/vhost && sha256sum -c --quiet /tmp/written.sha256)
umount /mnt/vhost
cat /tmp/written.sha256
"""


def bridge_address() -> str:
    inspect = subprocess.run(["podman", "network", "inspect", "podman"], capture_output=True, text=True)
    try:
        return json.loads(inspect.stdout)[0]["subnets"][0]["gateway"]
    except (ValueError, LookupError, KeyError):
        return PODMAN_BRIDGE


def test_s3fs_in_a_container_reaches_localcloud_over_the_bridge(make_localcloud: Any) -> None:
    require_mount_tools(container=True)
    image = ensure_s3fs_image()
    cloud = make_localcloud(host="0.0.0.0")
    bucket = unique("ctr")
    s3_client(cloud, root_keys(cloud)).create_bucket(Bucket=bucket)
    gateway, port = bridge_address(), cloud.oss_endpoint.rsplit(":", 1)[1]
    internal = f"oss-{cloud.region}-internal.aliyuncs.com"
    run = subprocess.run(
        ["podman", "run", "--rm", "--device", "/dev/fuse", "--cap-add", "SYS_ADMIN",
         "--add-host", f"{bucket}.{internal}:{gateway}",
         "-e", f"PASSWD={cloud.access_key_id}:{cloud.access_key_secret}", "-e", f"BUCKET={bucket}",
         "-e", f"URL=http://{gateway}:{port}", "-e", f"VHOST_URL=http://{internal}:{port}",
         image, "bash", "-c", CONTAINER_SCRIPT],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"container script failed:\n{run.stdout}\n{run.stderr}"
    written = dict(line.split()[::-1] for line in run.stdout.splitlines() if line.strip())
    assert set(written) == {"./output/big.bin", "./output/checkpoint-10/optimizer.pt",
                            "./output/checkpoint-10/trainer_state.json", "./output/checkpoint-20-best/optimizer.pt",
                            "./output/checkpoint-20-best/trainer_state.json"}
    s3 = s3_client(cloud, root_keys(cloud))
    big = s3.get_object(Bucket=bucket, Key="output/big.bin")["Body"]
    h = hashlib.sha256()
    while chunk := big.read(MB):
        h.update(chunk)
    assert h.hexdigest() == written["./output/big.bin"]
