"""OSS object API: put/get/range/head/delete/copy, listings, checksums, through the three clients."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from alibabacloud_oss_v2.crc import Crc64
from botocore.exceptions import ClientError

from .oss_support import oss2_bucket, root_keys, s3_client, unique, v2_client


@pytest.fixture(scope="module")
def bucket(localcloud: Any) -> str:
    name = unique("objs")
    v2_client(localcloud, root_keys(localcloud)).put_bucket(oss.PutBucketRequest(bucket=name))
    return name


@pytest.fixture(scope="module")
def v2(localcloud: Any) -> oss.Client:
    return v2_client(localcloud, root_keys(localcloud))


@pytest.fixture(scope="module")
def s3(localcloud: Any) -> Any:
    return s3_client(localcloud, root_keys(localcloud))


def crc64(data: bytes) -> int:
    c = Crc64(0)
    c.update(data)
    return c.sum64()


def test_put_get_head_with_oss_etag_crc64_and_metadata(v2: oss.Client, bucket: str) -> None:
    data = os.urandom(300_000)
    put = v2.put_object(oss.PutObjectRequest(bucket=bucket, key="dir/file.bin", body=data,
                                             content_type="application/x-test", metadata={"step": "42"}))
    assert put.etag == f'"{hashlib.md5(data).hexdigest().upper()}"'
    assert put.hash_crc64 == str(crc64(data))
    got = v2.get_object(oss.GetObjectRequest(bucket=bucket, key="dir/file.bin"))
    assert got.body.read() == data
    assert got.content_type == "application/x-test"
    assert got.metadata == {"step": "42"}
    head = v2.head_object(oss.HeadObjectRequest(bucket=bucket, key="dir/file.bin"))
    assert head.content_length == len(data)
    assert head.object_type == "Normal"
    assert head.hash_crc64 == str(crc64(data))


@pytest.mark.parametrize(("spec", "expected"), [
    ("bytes=0-9", slice(0, 10)), ("bytes=100-", slice(100, None)), ("bytes=-5", slice(-5, None)),
    ("bytes=995-2000", slice(995, None)),
])
def test_ranged_get(v2: oss.Client, bucket: str, spec: str, expected: slice) -> None:
    data = os.urandom(1000)
    v2.put_object(oss.PutObjectRequest(bucket=bucket, key="ranged", body=data))
    got = v2.get_object(oss.GetObjectRequest(bucket=bucket, key="ranged", range_header=spec))
    assert got.body.read() == data[expected]
    assert got.content_range.endswith("/1000")


def test_unsatisfiable_range_returns_the_whole_object_as_oss_does(v2: oss.Client, bucket: str) -> None:
    v2.put_object(oss.PutObjectRequest(bucket=bucket, key="short", body=b"0123456789"))
    got = v2.get_object(oss.GetObjectRequest(bucket=bucket, key="short", range_header="bytes=50-60"))
    assert got.body.read() == b"0123456789"


def test_oss2_round_trip_with_client_crc_checks(localcloud: Any, bucket: str) -> None:
    b = oss2_bucket(localcloud, root_keys(localcloud), bucket)
    data = os.urandom(2_000_000)
    result = b.put_object("oss2/a b+c%d.bin", data, headers={"x-oss-meta-owner": "tests"})
    assert result.crc == crc64(data)
    obj = b.get_object("oss2/a b+c%d.bin")
    assert obj.read() == data
    assert b.head_object("oss2/a b+c%d.bin").headers["x-oss-meta-owner"] == "tests"
    assert b.get_object_meta("oss2/a b+c%d.bin").content_length == len(data)
    b.delete_object("oss2/a b+c%d.bin")
    assert not b.object_exists("oss2/a b+c%d.bin")


def test_missing_key_is_no_such_key(localcloud: Any, v2: oss.Client, s3: Any, bucket: str) -> None:
    with pytest.raises(oss.exceptions.OperationError) as err:
        v2.get_object(oss.GetObjectRequest(bucket=bucket, key="absent"))
    assert (err.value.unwrap().status_code, err.value.unwrap().code) == (404, "NoSuchKey")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        oss2_bucket(localcloud, root_keys(localcloud), bucket).get_object("absent")
    with pytest.raises(ClientError) as s3err:
        s3.get_object(Bucket=bucket, Key="absent")
    assert s3err.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(oss2.exceptions.NotFound):  # HEAD: the error comes in x-oss-err
        oss2_bucket(localcloud, root_keys(localcloud), bucket).head_object("absent")


def test_s3_put_get_head_copy_delete(s3: Any, bucket: str) -> None:
    data = os.urandom(50_000)
    put = s3.put_object(Bucket=bucket, Key="s3/src", Body=data, Metadata={"mode": "33188"})
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="s3/src", Range="bytes=10-19")["Body"].read() == data[10:20]
    assert s3.head_object(Bucket=bucket, Key="s3/src")["Metadata"] == {"mode": "33188"}
    s3.copy_object(Bucket=bucket, Key="s3/dst", CopySource={"Bucket": bucket, "Key": "s3/src"})
    assert s3.get_object(Bucket=bucket, Key="s3/dst")["Body"].read() == data
    s3.copy_object(Bucket=bucket, Key="s3/dst", CopySource=f"{bucket}/s3/dst", MetadataDirective="REPLACE",
                   Metadata={"mode": "16877"})
    assert s3.head_object(Bucket=bucket, Key="s3/dst")["Metadata"] == {"mode": "16877"}
    assert s3.get_object(Bucket=bucket, Key="s3/dst")["Body"].read() == data
    s3.delete_object(Bucket=bucket, Key="s3/src")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="s3/src")


def test_oss_copy_object_keeps_data_and_checksums(v2: oss.Client, bucket: str) -> None:
    data = os.urandom(10_000)
    v2.put_object(oss.PutObjectRequest(bucket=bucket, key="copy/src", body=data))
    result = v2.copy_object(oss.CopyObjectRequest(bucket=bucket, key="copy/dst", source_bucket=bucket,
                                                  source_key="copy/src"))
    assert result.etag == f'"{hashlib.md5(data).hexdigest().upper()}"'
    assert v2.get_object(oss.GetObjectRequest(bucket=bucket, key="copy/dst")).body.read() == data


def test_delete_multiple_objects(v2: oss.Client, s3: Any, bucket: str) -> None:
    for key in ("multi/a", "multi/b", "multi/c d"):
        v2.put_object(oss.PutObjectRequest(bucket=bucket, key=key, body=b"x"))
    result = v2.delete_multiple_objects(oss.DeleteMultipleObjectsRequest(
        bucket=bucket, objects=[oss.DeleteObject(key="multi/a"), oss.DeleteObject(key="multi/c d")]))
    assert sorted(d.key for d in result.deleted_objects) == ["multi/a", "multi/c d"]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "multi/b"}]})
    listed = v2.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket, prefix="multi/"))
    assert not listed.contents


@pytest.fixture(scope="module")
def tree(v2: oss.Client) -> str:
    """A bucket holding a small checkpoint-like tree with awkward key characters."""
    name = unique("tree")
    v2.put_bucket(oss.PutBucketRequest(bucket=name))
    keys = ["out/checkpoint-10/adapter.bin", "out/checkpoint-10/trainer_state.json", "out/checkpoint-20/a.bin",
            "out/logging.jsonl", "out/space dir/x+y.txt", "out/zz", "top.txt", "ünïcode/ø.txt"]
    for key in keys:
        v2.put_object(oss.PutObjectRequest(bucket=name, key=key, body=key.encode()))
    return name


def test_list_v1_with_prefix_delimiter_and_markers(v2: oss.Client, tree: str) -> None:
    first = v2.list_objects(oss.ListObjectsRequest(bucket=tree, prefix="out/", delimiter="/", max_keys=2))
    assert [p.prefix for p in first.common_prefixes or []] == ["out/checkpoint-10/", "out/checkpoint-20/"]
    assert first.is_truncated
    second = v2.list_objects(oss.ListObjectsRequest(bucket=tree, prefix="out/", delimiter="/", max_keys=2,
                                                    marker=first.next_marker))
    assert [o.key for o in second.contents] == ["out/logging.jsonl"]
    assert [p.prefix for p in second.common_prefixes] == ["out/space dir/"]
    third = v2.list_objects(oss.ListObjectsRequest(bucket=tree, prefix="out/", delimiter="/", max_keys=2,
                                                   marker=second.next_marker))
    assert [o.key for o in third.contents] == ["out/zz"]
    assert not third.is_truncated


def test_list_v2_pages_with_continuation_token(v2: oss.Client, tree: str) -> None:
    keys, token = [], None
    while True:
        page = v2.list_objects_v2(oss.ListObjectsV2Request(bucket=tree, max_keys=3, continuation_token=token))
        keys += [o.key for o in page.contents or []]
        assert page.key_count == len(page.contents or [])
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    assert keys == sorted(keys, key=lambda k: k.encode()) and len(keys) == 8
    assert "ünïcode/ø.txt" in keys and "out/space dir/x+y.txt" in keys


def test_list_through_every_client_agrees(localcloud: Any, s3: Any, tree: str) -> None:
    via_oss2 = [o.key for o in oss2.ObjectIterator(oss2_bucket(localcloud, root_keys(localcloud), tree))]
    via_s3_v1 = [o["Key"] for o in s3.list_objects(Bucket=tree)["Contents"]]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=tree, PaginationConfig={"PageSize": 2})
    via_s3_v2 = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert via_oss2 == via_s3_v1 == via_s3_v2
    top = s3.list_objects_v2(Bucket=tree, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["out/", "ünïcode/"]
    assert [o["Key"] for o in top["Contents"]] == ["top.txt"]
    after = s3.list_objects_v2(Bucket=tree, StartAfter="out/zz")
    assert [o["Key"] for o in after["Contents"]] == ["top.txt", "ünïcode/ø.txt"]
