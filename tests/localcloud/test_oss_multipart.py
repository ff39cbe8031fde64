"""Multipart uploads through the three clients: parts, listings, completion, abort, and their errors."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from alibabacloud_oss_v2.crc import Crc64
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from .oss_support import oss2_bucket, root_keys, s3_client, unique, v2_client

PART = 128 * 1024


@pytest.fixture(scope="module")
def v2(localcloud: Any) -> oss.Client:
    return v2_client(localcloud, root_keys(localcloud))


@pytest.fixture(scope="module")
def bucket(v2: oss.Client) -> str:
    name = unique("mpu")
    v2.put_bucket(oss.PutBucketRequest(bucket=name))
    return name


def multipart_etag(parts: list[bytes]) -> str:
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


def test_v2_multipart_lists_uploads_and_parts_then_completes(v2: oss.Client, bucket: str) -> None:
    parts = [os.urandom(PART), os.urandom(PART), os.urandom(1000)]
    up = v2.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=bucket, key="ckpt/model.bin"))
    etags = []
    for number, data in enumerate(parts, 1):
        r = v2.upload_part(oss.UploadPartRequest(bucket=bucket, key="ckpt/model.bin", upload_id=up.upload_id,
                                                 part_number=number, body=data))
        etags.append(r.etag)
    uploads = v2.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=bucket)).uploads
    assert [(u.key, u.upload_id) for u in uploads] == [("ckpt/model.bin", up.upload_id)]
    listed = v2.list_parts(oss.ListPartsRequest(bucket=bucket, key="ckpt/model.bin", upload_id=up.upload_id))
    assert [(p.part_number, p.size) for p in listed.parts] == [(1, PART), (2, PART), (3, 1000)]
    assert not v2.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket, prefix="ckpt/")).contents
    done = v2.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=bucket, key="ckpt/model.bin", upload_id=up.upload_id,
        complete_multipart_upload=oss.CompleteMultipartUpload(parts=[
            oss.UploadPart(part_number=n, etag=e) for n, e in enumerate(etags, 1)])))
    whole = b"".join(parts)
    assert done.etag == f'"{multipart_etag(parts).upper()}"'
    crc = Crc64(0)
    crc.update(whole)
    assert done.hash_crc64 == str(crc.sum64())
    got = v2.get_object(oss.GetObjectRequest(bucket=bucket, key="ckpt/model.bin"))
    assert got.body.read() == whole and got.object_type == "Multipart"
    assert not v2.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=bucket)).uploads


def test_oss2_resumable_upload_uses_multipart_with_crc_checks(localcloud: Any, bucket: str, tmp_path: Any) -> None:
    path = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    b = oss2_bucket(localcloud, root_keys(localcloud), bucket)
    b.enable_crc = True
    oss2.resumable_upload(b, "oss2/big.bin", str(path), multipart_threshold=1024 * 1024, part_size=1024 * 1024,
                          num_threads=2, store=oss2.ResumableStore(root=str(tmp_path)))
    assert b.get_object("oss2/big.bin").read() == data
    assert b.head_object("oss2/big.bin").etag.endswith("-4")


def test_boto3_multipart_transfer_and_part_copy(localcloud: Any, bucket: str, tmp_path: Any) -> None:
    s3 = s3_client(localcloud, root_keys(localcloud))
    src = tmp_path / "src.bin"
    data = os.urandom(12 * 1024 * 1024)
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(src), bucket, "s3/big.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="s3/big.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')
    dst = tmp_path / "dst.bin"
    s3.download_file(bucket, "s3/big.bin", str(dst), Config=config)
    assert dst.read_bytes() == data
    up = s3.create_multipart_upload(Bucket=bucket, Key="s3/copied.bin")
    r = s3.upload_part_copy(Bucket=bucket, Key="s3/copied.bin", UploadId=up["UploadId"], PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "s3/big.bin"}, CopySourceRange="bytes=0-1048575")
    s3.complete_multipart_upload(Bucket=bucket, Key="s3/copied.bin", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="s3/copied.bin")["Body"].read() == data[:1048576]


def test_abort_forgets_the_upload(v2: oss.Client, bucket: str) -> None:
    up = v2.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=bucket, key="aborted"))
    v2.upload_part(oss.UploadPartRequest(bucket=bucket, key="aborted", upload_id=up.upload_id, part_number=1,
                                         body=b"x" * 10))
    v2.abort_multipart_upload(oss.AbortMultipartUploadRequest(bucket=bucket, key="aborted", upload_id=up.upload_id))
    with pytest.raises(oss.exceptions.OperationError) as err:
        v2.list_parts(oss.ListPartsRequest(bucket=bucket, key="aborted", upload_id=up.upload_id))
    assert (err.value.unwrap().status_code, err.value.unwrap().code) == (404, "NoSuchUpload")


def _s3_error(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response["Error"]["Code"]


def test_completion_errors(localcloud: Any, bucket: str) -> None:
    s3 = s3_client(localcloud, root_keys(localcloud))
    up = s3.create_multipart_upload(Bucket=bucket, Key="bad")["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="bad", UploadId=up, PartNumber=1, Body=b"tiny")["ETag"]
    last = s3.upload_part(Bucket=bucket, Key="bad", UploadId=up, PartNumber=2, Body=b"end")["ETag"]
    complete = s3.complete_multipart_upload
    parts = [{"PartNumber": 1, "ETag": small}, {"PartNumber": 2, "ETag": last}]
    assert _s3_error(complete, Bucket=bucket, Key="bad", UploadId=up, MultipartUpload={"Parts": parts}) \
        == "EntityTooSmall"
    wrong = [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]
    assert _s3_error(complete, Bucket=bucket, Key="bad", UploadId=up, MultipartUpload={"Parts": wrong}) \
        == "InvalidPart"
    assert _s3_error(complete, Bucket=bucket, Key="bad", UploadId=up, MultipartUpload={"Parts": parts[::-1]}) \
        == "InvalidPartOrder"
    assert _s3_error(complete, Bucket=bucket, Key="bad", UploadId="NOSUCHUPLOAD",
                     MultipartUpload={"Parts": parts}) == "NoSuchUpload"
    assert _s3_error(s3.upload_part, Bucket=bucket, Key="bad", UploadId=up, PartNumber=10001, Body=b"x") \
        == "InvalidArgument"
    single = complete(Bucket=bucket, Key="bad", UploadId=up, MultipartUpload={"Parts": parts[1:]})
    assert single["ETag"] == f'"{hashlib.md5(hashlib.md5(b"end").digest()).hexdigest()}-1"'
