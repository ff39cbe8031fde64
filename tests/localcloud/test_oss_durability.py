"""A killed daemon never leaves a partial object: SIGKILL in the middle of uploads, then restart."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from .oss_support import root_keys, s3_client, unique

MB = 1024 * 1024


def start_upload(localcloud: Any, path: str, total: int, sent: int) -> http.client.HTTPConnection:
    """A signed PUT of `total` bytes of which only `sent` are sent: the daemon is left mid-body."""
    url = f"{localcloud.oss_endpoint}{path}"
    request = AWSRequest(method="PUT", url=url, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD",
                                                         "Content-Length": str(total)})
    S3SigV4Auth(Credentials(localcloud.access_key_id, localcloud.access_key_secret), "s3",
                localcloud.region).add_auth(request)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("PUT", parts.path + (f"?{parts.query}" if parts.query else ""), skip_accept_encoding=True)
    for name, value in request.headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    chunk = os.urandom(MB)
    for _ in range(sent // MB):
        conn.send(chunk)
    return conn


def wait_for_partial_file(state_dir: Path, at_least: int) -> None:
    """Until the daemon has written some of the body to a temporary file."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sizes = [p.stat().st_size for p in (state_dir / "oss" / "tmp").iterdir()]
        if any(s >= at_least for s in sizes):
            return
        time.sleep(0.05)
    raise AssertionError("the daemon never started writing the upload")


def kill_daemon(state_dir: Path) -> None:
    pid = json.loads((state_dir / "daemon.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:  # the daemon is this process's child (started by the fixture): reap it, or it lingers a zombie
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not Path(f"/proc/{pid}").exists():
                return
        time.sleep(0.05)
    raise AssertionError(f"daemon {pid} survived SIGKILL")


@pytest.fixture
def cloud(make_localcloud: Any) -> Any:
    return make_localcloud()


def listed(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_killed_mid_put_keeps_the_previous_version_and_lists_nothing_partial(cloud: Any) -> None:
    s3 = s3_client(cloud, root_keys(cloud))
    bucket = unique("durable")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="model.bin", Body=b"version one")
    s3.put_object(Bucket=bucket, Key="other.bin", Body=b"untouched")
    conn = start_upload(cloud, f"/{bucket}/model.bin", total=200 * MB, sent=40 * MB)
    conn2 = start_upload(cloud, f"/{bucket}/new.bin", total=100 * MB, sent=20 * MB)
    wait_for_partial_file(cloud.state_dir, 10 * MB)
    kill_daemon(cloud.state_dir)
    conn.close()
    conn2.close()
    cloud.restart()
    s3 = s3_client(cloud, root_keys(cloud))
    assert listed(s3, bucket) == ["model.bin", "other.bin"]
    assert s3.get_object(Bucket=bucket, Key="model.bin")["Body"].read() == b"version one"
    assert s3.get_object(Bucket=bucket, Key="other.bin")["Body"].read() == b"untouched"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="new.bin")
    assert not list((cloud.state_dir / "oss" / "tmp").iterdir()), "leftovers of the killed upload remain"


def test_killed_mid_part_keeps_the_upload_resumable_and_the_object_unlisted(cloud: Any) -> None:
    s3 = s3_client(cloud, root_keys(cloud))
    bucket = unique("durable")
    s3.create_bucket(Bucket=bucket)
    up = s3.create_multipart_upload(Bucket=bucket, Key="ckpt/optimizer.pt")["UploadId"]
    first = os.urandom(8 * MB)
    etag1 = s3.upload_part(Bucket=bucket, Key="ckpt/optimizer.pt", UploadId=up, PartNumber=1, Body=first)["ETag"]
    conn = start_upload(cloud, f"/{bucket}/ckpt/optimizer.pt?partNumber=2&uploadId={up}", total=64 * MB,
                        sent=24 * MB)
    wait_for_partial_file(cloud.state_dir, 8 * MB)
    kill_daemon(cloud.state_dir)
    conn.close()
    cloud.restart()
    s3 = s3_client(cloud, root_keys(cloud))
    assert listed(s3, bucket) == []
    parts = s3.list_parts(Bucket=bucket, Key="ckpt/optimizer.pt", UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 8 * MB)]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [up]
    second = os.urandom(3 * MB)
    etag2 = s3.upload_part(Bucket=bucket, Key="ckpt/optimizer.pt", UploadId=up, PartNumber=2, Body=second)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="ckpt/optimizer.pt", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": etag2}]})
    assert s3.get_object(Bucket=bucket, Key="ckpt/optimizer.pt")["Body"].read() == first + second
    assert not list((cloud.state_dir / "oss" / "tmp").iterdir())


def test_objects_survive_a_kill_and_a_clean_restart(cloud: Any) -> None:
    s3 = s3_client(cloud, root_keys(cloud))
    bucket = unique("durable")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    data = {f"tree/{i:03d}": os.urandom(1000 + i) for i in range(50)}
    etags = {k: s3.put_object(Bucket=bucket, Key=k, Body=v)["ETag"] for k, v in data.items()}
    kill_daemon(cloud.state_dir)
    cloud.restart()
    cloud.restart()
    s3 = s3_client(cloud, root_keys(cloud))
    assert listed(s3, bucket) == sorted(data)
    for key, value in data.items():
        got = s3.get_object(Bucket=bucket, Key=key)
        assert (got["Body"].read(), got["ETag"]) == (value, etags[key])
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "k", "Value": "v"}]
    blobs = [p for d in (cloud.state_dir / "oss" / "blobs").iterdir() for p in d.iterdir()]
    assert len(blobs) == len(data)
