"""Write and read throughput through an s3fs mount of a localcloud bucket, against local disk.

Starts a localcloud of its own (temporary state), mounts a bucket with s3fs (path style, SigV4)
and copies one file of random data onto the mount and back, timing each copy; the same copies
between two local directories are the baseline, measured in the same run. The read goes through
a fresh mount so s3fs's own cache does not serve it (dropping the page cache needs privileges the
sandbox lacks). Needs root, /dev/fuse and s3fs.

    .venv/bin/python bench/oss_s3fs_throughput.py [--size-mb 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

from localcloud import cli

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import read_env  # noqa: E402 - the repository root goes on the path first
from tests.localcloud.s3fs_support import mount, unmount, write_passwd  # noqa: E402

MB = 1024 * 1024


def timed_copy(src: Path, dst: Path) -> float:
    started = time.perf_counter()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 8 * MB)
        fout.flush()
        os.fsync(fout.fileno())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=300)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("s3fs") is None:
        sys.exit("needs root and s3fs (apt-get install s3fs)")
    with tempfile.TemporaryDirectory(prefix="oss-s3fs-bench-") as tmp:
        work = Path(tmp)
        state = work / "state"
        cli.up(state, None, None, None, None, None)
        try:
            env = read_env(state / cli.ENV_FILE)
            endpoint = env["LOCALCLOUD_OSS_ENDPOINT"]
            boto3.client("s3", endpoint_url=endpoint, region_name=env["ALIBABA_CLOUD_REGION_ID"],
                         aws_access_key_id=env["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                         aws_secret_access_key=env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
                         config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket="bench")
            passwd = write_passwd(work / "passwd", env["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                                  env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"])
            source = work / "source.bin"
            with open(source, "wb") as f:
                for start in range(0, args.size_mb, 8):
                    f.write(os.urandom(min(8, args.size_mb - start) * MB))
            size_mb = source.stat().st_size / MB
            (work / "disk").mkdir()
            disk_write = timed_copy(source, work / "disk" / "copy.bin")
            disk_read = timed_copy(work / "disk" / "copy.bin", work / "disk" / "back.bin")
            mnt = work / "mnt"
            options = ("use_path_request_style", "sigv4")
            mount("bench", mnt, endpoint, passwd, *options)
            try:
                s3fs_write = timed_copy(source, mnt / "copy.bin")
            finally:
                unmount(mnt)
            mount("bench", mnt, endpoint, passwd, *options)
            try:
                s3fs_read = timed_copy(mnt / "copy.bin", work / "back-s3fs.bin")
            finally:
                unmount(mnt)
            same = subprocess.run(["cmp", "-s", str(source), str(work / "back-s3fs.bin")]).returncode == 0
        finally:
            cli.down(state)
    print(f"s3fs over localcloud OSS, one {size_mb:.0f} MB file, baseline = the same copy on local disk")
    print(f"{'':8}{'s3fs MB/s':>12}{'disk MB/s':>12}{'ratio':>8}")
    for name, fs, disk in (("write", s3fs_write, disk_write), ("read", s3fs_read, disk_read)):
        print(f"{name:8}{size_mb / fs:>12.1f}{size_mb / disk:>12.1f}{disk / fs:>8.2f}")
    print(f"read back identical: {same}")


if __name__ == "__main__":
    main()
