"""OSS bucket API through alibabacloud-oss-v2, oss2 and boto3."""

from __future__ import annotations

from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from botocore.exceptions import ClientError

from .oss_support import oss2_bucket, oss2_service, raw_request, root_keys, s3_client, unique, v2_client


@pytest.fixture(scope="module")
def v2(localcloud: Any) -> oss.Client:
    return v2_client(localcloud, root_keys(localcloud))


def test_put_bucket_then_info_location_and_listing(localcloud: Any, v2: oss.Client) -> None:
    name = unique("bkt")
    v2.put_bucket(oss.PutBucketRequest(bucket=name, acl="private",
                                       create_bucket_configuration=oss.CreateBucketConfiguration(
                                           storage_class="Standard")))
    info = v2.get_bucket_info(oss.GetBucketInfoRequest(bucket=name)).bucket_info
    assert info.name == name
    assert info.location == f"oss-{localcloud.region}"
    assert info.acl == "private"
    assert info.intranet_endpoint == f"oss-{localcloud.region}-internal.aliyuncs.com"
    assert v2.get_bucket_location(oss.GetBucketLocationRequest(bucket=name)).location == f"oss-{localcloud.region}"
    names = [b.name for b in v2.list_buckets(oss.ListBucketsRequest()).buckets]
    assert name in names
    assert name in [b.name for b in oss2.BucketIterator(oss2_service(localcloud, root_keys(localcloud)))]
    assert name in [b["Name"] for b in s3_client(localcloud, root_keys(localcloud)).list_buckets()["Buckets"]]


def test_put_bucket_twice_is_bucket_already_exists(v2: oss.Client) -> None:
    name = unique("bkt")
    v2.put_bucket(oss.PutBucketRequest(bucket=name))
    with pytest.raises(oss.exceptions.OperationError) as err:
        v2.put_bucket(oss.PutBucketRequest(bucket=name))
    service_error = err.value.unwrap()
    assert (service_error.status_code, service_error.code) == (409, "BucketAlreadyExists")


@pytest.mark.parametrize("name", ["Upper-Case", "ab", "-leading-hyphen", "under_score"])
def test_invalid_bucket_names_are_rejected(localcloud: Any, name: str) -> None:
    # oss2 and the V2 SDK check names before sending; boto3 lets these through to the server.
    with pytest.raises(ClientError) as err:
        s3_client(localcloud, root_keys(localcloud)).create_bucket(Bucket=name)
    assert err.value.response["Error"]["Code"] == "InvalidBucketName"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_bucket_acl_round_trip(localcloud: Any) -> None:
    bucket = oss2_bucket(localcloud, root_keys(localcloud), unique("bkt"))
    bucket.create_bucket(oss2.BUCKET_ACL_PRIVATE)
    assert bucket.get_bucket_acl().acl == "private"
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert bucket.get_bucket_acl().acl == "public-read"


def test_bucket_tags_put_get_delete(v2: oss.Client) -> None:
    name = unique("bkt")
    v2.put_bucket(oss.PutBucketRequest(bucket=name))
    tags = [oss.Tag(key="project", value="spot"), oss.Tag(key="owner", value="ml team")]
    v2.put_bucket_tags(oss.PutBucketTagsRequest(bucket=name, tagging=oss.Tagging(tag_set=oss.TagSet(tags=tags))))
    got = v2.get_bucket_tags(oss.GetBucketTagsRequest(bucket=name)).tagging.tag_set.tags
    assert {t.key: t.value for t in got} == {"project": "spot", "owner": "ml team"}
    v2.delete_bucket_tags(oss.DeleteBucketTagsRequest(bucket=name))
    assert not v2.get_bucket_tags(oss.GetBucketTagsRequest(bucket=name)).tagging.tag_set.tags


def test_delete_bucket_refuses_while_objects_remain(localcloud: Any, v2: oss.Client) -> None:
    name = unique("bkt")
    v2.put_bucket(oss.PutBucketRequest(bucket=name))
    v2.put_object(oss.PutObjectRequest(bucket=name, key="keep", body=b"x"))
    with pytest.raises(oss.exceptions.OperationError) as err:
        v2.delete_bucket(oss.DeleteBucketRequest(bucket=name))
    assert (err.value.unwrap().status_code, err.value.unwrap().code) == (409, "BucketNotEmpty")
    v2.delete_object(oss.DeleteObjectRequest(bucket=name, key="keep"))
    v2.delete_bucket(oss.DeleteBucketRequest(bucket=name))
    assert not v2.is_bucket_exist(name)


def test_missing_bucket_is_no_such_bucket_in_oss_error_xml(localcloud: Any) -> None:
    status, headers, body = raw_request(localcloud, "GET", f"{localcloud.oss_endpoint}/no-such-bucket-here/")
    assert status in (403, 404)  # anonymous: OSS may deny before it looks
    s3 = s3_client(localcloud, root_keys(localcloud))
    with pytest.raises(ClientError) as err:
        s3.list_objects(Bucket="no-such-bucket-here")
    assert err.value.response["Error"]["Code"] == "NoSuchBucket"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert body.startswith(b"<?xml") and b"<RequestId>" in body and b"<HostId>" in body and b"<EC" in body
    assert headers["x-oss-request-id"]


def test_s3_create_head_and_delete_bucket(localcloud: Any) -> None:
    s3 = s3_client(localcloud, root_keys(localcloud))
    name = unique("s3bkt")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": localcloud.region})
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == f"oss-{localcloud.region}"
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket=name)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
