"""`x-oss-forbid-overwrite` on PutObject, CopyObject and multipart uploads, through alibabacloud-oss-v2 and oss2:
a taken key is a 409 FileAlreadyExists that leaves the object (and its blobs) as they were, and of writers
racing to create one key exactly one wins (the training agent's lease relies on it)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
import pytest

from .oss_support import oss2_bucket, root_keys, unique, v2_client

MESSAGE = "The object you specified already exists and can not be overwritten."
PART = 128 * 1024
RACERS = 8


@pytest.fixture(scope="module")
def v2(localcloud: Any) -> oss.Client:
    return v2_client(localcloud, root_keys(localcloud))


@pytest.fixture(scope="module")
def bucket(v2: oss.Client) -> str:
    name = unique("nooverwrite")
    v2.put_bucket(oss.PutBucketRequest(bucket=name))
    return name


@pytest.fixture(scope="module")
def b2(localcloud: Any, bucket: str) -> oss2.Bucket:
    return oss2_bucket(localcloud, root_keys(localcloud), bucket)


def stored_files(localcloud: Any) -> int:
    """Blobs on disk plus temporary files: a refused write must not leave one behind."""
    root = Path(localcloud.state_dir) / "oss"
    return sum(1 for d in (root / "blobs").iterdir() for _ in d.iterdir()) + len(list((root / "tmp").iterdir()))


def refused(call: Callable[[], Any]) -> Any:
    """The service error of a v2 call that must fail."""
    with pytest.raises(oss.exceptions.OperationError) as err:
        call()
    return err.value.unwrap()


def read(v2: oss.Client, bucket: str, key: str) -> bytes:
    return v2.get_object(oss.GetObjectRequest(bucket=bucket, key=key)).body.read()


def put(v2: oss.Client, bucket: str, key: str, body: bytes, forbid: Any = None) -> Any:
    return v2.put_object(oss.PutObjectRequest(bucket=bucket, key=key, body=body, forbid_overwrite=forbid))


def test_put_refuses_a_taken_key_and_keeps_the_object(localcloud: Any, v2: oss.Client, bucket: str) -> None:
    put(v2, bucket, "put/taken", b"original")
    files = stored_files(localcloud)
    err = refused(lambda: put(v2, bucket, "put/taken", os.urandom(200_000), forbid=True))
    assert (err.status_code, err.code, err.message, err.ec) == (409, "FileAlreadyExists", MESSAGE, "0026-00000201")
    assert read(v2, bucket, "put/taken") == b"original"
    assert stored_files(localcloud) == files, "the refused upload's blob was kept"


def test_put_with_forbid_false_or_absent_overwrites(v2: oss.Client, bucket: str) -> None:
    put(v2, bucket, "put/replaced", b"one")
    put(v2, bucket, "put/replaced", b"two", forbid=False)
    assert read(v2, bucket, "put/replaced") == b"two"
    put(v2, bucket, "put/replaced", b"three", forbid="false")
    assert read(v2, bucket, "put/replaced") == b"three"
    put(v2, bucket, "put/replaced", b"four")
    assert read(v2, bucket, "put/replaced") == b"four"


def test_put_with_forbid_creates_a_new_key(v2: oss.Client, bucket: str) -> None:
    result = put(v2, bucket, "put/fresh", b"lease: i-1", forbid=True)
    assert result.status_code == 200
    assert read(v2, bucket, "put/fresh") == b"lease: i-1"


def test_oss2_put_honours_the_header(b2: oss2.Bucket) -> None:
    assert b2.put_object("oss2/lease", b"first", headers={"x-oss-forbid-overwrite": "true"}).status == 200
    with pytest.raises(oss2.exceptions.ServerError) as err:
        b2.put_object("oss2/lease", b"second", headers={"x-oss-forbid-overwrite": "true"})
    assert (err.value.status, err.value.code, err.value.ec) == (409, "FileAlreadyExists", "0026-00000201")
    assert b2.get_object("oss2/lease").read() == b"first"
    b2.put_object("oss2/lease", b"third", headers={"x-oss-forbid-overwrite": "false"})
    assert b2.get_object("oss2/lease").read() == b"third"


def test_a_value_other_than_true_or_false_is_invalid(b2: oss2.Bucket) -> None:
    with pytest.raises(oss2.exceptions.ServerError) as err:
        b2.put_object("oss2/invalid", b"x", headers={"x-oss-forbid-overwrite": "abc"})
    assert (err.value.status, err.value.code, err.value.ec) == (400, "InvalidArgument", "0017-00000279")
    assert not b2.object_exists("oss2/invalid")


def race(count: int, attempt: Callable[[int], Any]) -> tuple[list[int], list[Any]]:
    """Run `attempt(i)` in `count` threads released together: (indexes that succeeded, service errors)."""
    start = threading.Barrier(count)
    won: list[int] = []
    errors: list[Any] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        start.wait()
        try:
            attempt(i)
        except oss.exceptions.OperationError as err:
            with lock:
                errors.append(err.unwrap())
        else:
            with lock:
                won.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return won, errors


def test_racing_creators_exactly_one_wins(localcloud: Any, bucket: str) -> None:
    key = unique("race/lease")
    bodies = [os.urandom(256 * 1024) for _ in range(RACERS)]
    clients = [v2_client(localcloud, root_keys(localcloud)) for _ in range(RACERS)]
    files = stored_files(localcloud)
    won, errors = race(RACERS, lambda i: put(clients[i], bucket, key, bodies[i], forbid=True))
    assert len(won) == 1, f"{len(won)} writers created the key"
    assert [(e.status_code, e.code) for e in errors] == [(409, "FileAlreadyExists")] * (RACERS - 1)
    assert read(clients[0], bucket, key) == bodies[won[0]]
    assert stored_files(localcloud) == files + 1, "refused uploads left blobs behind"


def copy(v2: oss.Client, bucket: str, src: str, dst: str, forbid: Any = None) -> Any:
    return v2.copy_object(oss.CopyObjectRequest(bucket=bucket, key=dst, source_bucket=bucket, source_key=src,
                                                forbid_overwrite=forbid))


def test_copy_refuses_a_taken_destination(localcloud: Any, v2: oss.Client, bucket: str) -> None:
    put(v2, bucket, "copy/src", b"source")
    put(v2, bucket, "copy/dst", b"destination")
    files = stored_files(localcloud)
    err = refused(lambda: copy(v2, bucket, "copy/src", "copy/dst", forbid=True))
    assert (err.status_code, err.code, err.message, err.ec) == (409, "FileAlreadyExists", MESSAGE, "0026-00000201")
    assert read(v2, bucket, "copy/dst") == b"destination"
    assert stored_files(localcloud) == files, "the refused copy's blob was kept"
    copy(v2, bucket, "copy/src", "copy/new", forbid=True)
    assert read(v2, bucket, "copy/new") == b"source"
    copy(v2, bucket, "copy/src", "copy/dst", forbid=False)
    assert read(v2, bucket, "copy/dst") == b"source"


def test_copy_onto_itself_is_refused_and_keeps_its_data(v2: oss.Client, bucket: str) -> None:
    put(v2, bucket, "copy/self", b"mine")
    err = refused(lambda: copy(v2, bucket, "copy/self", "copy/self", forbid=True))
    assert (err.status_code, err.code) == (409, "FileAlreadyExists")
    assert read(v2, bucket, "copy/self") == b"mine"


def test_oss2_copy_honours_the_header(b2: oss2.Bucket, bucket: str) -> None:
    b2.put_object("oss2/copy-src", b"source")
    b2.put_object("oss2/copy-dst", b"destination")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        b2.copy_object(bucket, "oss2/copy-src", "oss2/copy-dst", headers={"x-oss-forbid-overwrite": "true"})
    assert (err.value.status, err.value.code) == (409, "FileAlreadyExists")
    assert b2.get_object("oss2/copy-dst").read() == b"destination"


def upload(v2: oss.Client, bucket: str, key: str, parts: list[bytes]) -> tuple[str, list[oss.UploadPart]]:
    up = v2.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=bucket, key=key))
    done = []
    for number, data in enumerate(parts, 1):
        r = v2.upload_part(oss.UploadPartRequest(bucket=bucket, key=key, upload_id=up.upload_id,
                                                 part_number=number, body=data))
        done.append(oss.UploadPart(part_number=number, etag=r.etag))
    return up.upload_id, done


def complete(v2: oss.Client, bucket: str, key: str, upload_id: str, parts: list[oss.UploadPart],
             forbid: Any = None) -> Any:
    return v2.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=bucket, key=key, upload_id=upload_id, forbid_overwrite=forbid,
        complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts)))


def test_completion_refuses_a_taken_key_and_keeps_the_upload(localcloud: Any, v2: oss.Client, bucket: str) -> None:
    data = [os.urandom(PART), os.urandom(1000)]
    upload_id, parts = upload(v2, bucket, "mpu/taken", data)
    put(v2, bucket, "mpu/taken", b"created meanwhile")
    files = stored_files(localcloud)
    err = refused(lambda: complete(v2, bucket, "mpu/taken", upload_id, parts, forbid=True))
    assert (err.status_code, err.code, err.message, err.ec) == (409, "FileAlreadyExists", MESSAGE, "0042-00000214")
    assert read(v2, bucket, "mpu/taken") == b"created meanwhile"
    assert stored_files(localcloud) == files, "the refused completion's blob was kept"
    listed = v2.list_parts(oss.ListPartsRequest(bucket=bucket, key="mpu/taken", upload_id=upload_id))
    assert [p.size for p in listed.parts] == [PART, 1000]
    complete(v2, bucket, "mpu/taken", upload_id, parts, forbid=False)
    assert read(v2, bucket, "mpu/taken") == b"".join(data)


def test_completion_with_forbid_creates_a_new_key(v2: oss.Client, bucket: str) -> None:
    upload_id, parts = upload(v2, bucket, "mpu/fresh", [b"whole"])
    assert complete(v2, bucket, "mpu/fresh", upload_id, parts, forbid=True).status_code == 200
    assert read(v2, bucket, "mpu/fresh") == b"whole"


def test_initiation_refuses_a_taken_key(v2: oss.Client, bucket: str) -> None:
    put(v2, bucket, "mpu/init-taken", b"here")
    err = refused(lambda: v2.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(
        bucket=bucket, key="mpu/init-taken", forbid_overwrite=True)))
    assert (err.status_code, err.code, err.message) == (409, "FileAlreadyExists", MESSAGE)
    uploads = v2.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=bucket, prefix="mpu/init-taken"))
    assert not uploads.uploads
    up = v2.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(
        bucket=bucket, key="mpu/init-new", forbid_overwrite=True))
    assert up.upload_id


def test_racing_completions_exactly_one_wins(localcloud: Any, v2: oss.Client, bucket: str) -> None:
    key = unique("race/mpu")
    uploads = [upload(v2, bucket, key, [os.urandom(PART), bytes([i])]) for i in range(4)]
    clients = [v2_client(localcloud, root_keys(localcloud)) for _ in uploads]
    won, errors = race(len(uploads), lambda i: complete(clients[i], bucket, key, *uploads[i], forbid=True))
    assert len(won) == 1, f"{len(won)} completions created the key"
    assert [(e.status_code, e.code) for e in errors] == [(409, "FileAlreadyExists")] * (len(uploads) - 1)
    assert read(v2, bucket, key)[-1] == won[0]
    left = v2.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=bucket, prefix=key)).uploads
    assert sorted(u.upload_id for u in left) == sorted(uploads[i][0] for i in range(len(uploads)) if i != won[0])


def test_oss2_multipart_honours_the_header(b2: oss2.Bucket) -> None:
    b2.put_object("oss2/mpu", b"here first")
    upload_id = b2.init_multipart_upload("oss2/mpu").upload_id
    part = b2.upload_part("oss2/mpu", upload_id, 1, b"late")
    parts = [oss2.models.PartInfo(1, part.etag)]
    with pytest.raises(oss2.exceptions.ServerError) as err:
        b2.complete_multipart_upload("oss2/mpu", upload_id, parts, headers={"x-oss-forbid-overwrite": "true"})
    assert (err.value.status, err.value.code, err.value.ec) == (409, "FileAlreadyExists", "0042-00000214")
    assert b2.get_object("oss2/mpu").read() == b"here first"
    b2.abort_multipart_upload("oss2/mpu", upload_id)


def test_a_versioned_bucket_ignores_the_header_as_oss_does(v2: oss.Client) -> None:
    """`x-oss-forbid-overwrite` "is invalid when the versioning status of the bucket is Enabled or Suspended"
    (PutObject's documentation): a lease built on it holds only on a bucket that was never versioned."""
    versioned = unique("versioned")
    v2.put_bucket(oss.PutBucketRequest(bucket=versioned))
    assert v2.get_bucket_versioning(oss.GetBucketVersioningRequest(bucket=versioned)) \
        .version_status is None
    put(v2, versioned, "lease", b"first", forbid=True)
    assert refused(lambda: put(v2, versioned, "lease", b"second", forbid=True)).status_code == 409
    for status in ("Enabled", "Suspended"):
        v2.put_bucket_versioning(oss.PutBucketVersioningRequest(
            bucket=versioned, versioning_configuration=oss.VersioningConfiguration(status=status)))
        assert v2.get_bucket_versioning(oss.GetBucketVersioningRequest(bucket=versioned)).version_status == status
        put(v2, versioned, "lease", status.encode(), forbid=True)
        assert read(v2, versioned, "lease") == status.encode()
    bad = refused(lambda: v2.put_bucket_versioning(oss.PutBucketVersioningRequest(
        bucket=versioned, versioning_configuration=oss.VersioningConfiguration(status="Off"))))
    assert (bad.status_code, bad.code) == (400, "MalformedXML")
