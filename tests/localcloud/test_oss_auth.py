"""Who may do what on OSS: signatures of every client, STS tokens and RAM policies, presigned URLs."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from .oss_support import (
    Keys,
    account_uid,
    allow,
    deny,
    expire,
    legacy_bucket,
    oss2_bucket,
    oss2_service,
    raw_request,
    role_keys,
    root_keys,
    s3_client,
    unique,
    v2_client,
)

PREFIX_ACTIONS = ["oss:GetObject", "oss:PutObject", "oss:DeleteObject", "oss:AbortMultipartUpload",
                  "oss:ListParts"]
BUCKET_ACTIONS = ["oss:ListObjects", "oss:GetBucketInfo", "oss:ListMultipartUploads"]


@pytest.fixture(scope="module")
def bucket(localcloud: Any) -> str:
    name = unique("authz")
    v2_client(localcloud, root_keys(localcloud)).put_bucket(oss.PutBucketRequest(bucket=name))
    return name


@pytest.fixture(scope="module")
def role(localcloud: Any, bucket: str) -> Keys:
    """A role that may read and write `allowed/` of the bucket, except `allowed/secret*`, and list it."""
    return role_keys(localcloud,
                     allow(PREFIX_ACTIONS, [f"acs:oss:*:*:{bucket}/allowed/*"]),
                     allow(BUCKET_ACTIONS, [f"acs:oss:*:*:{bucket}"]),
                     deny(["oss:*"], [f"acs:oss:*:*:{bucket}/allowed/secret*"]))


def oss_code(call: Callable[[], Any]) -> tuple[int, str]:
    """(status, code) of the OSS error any of the three clients raises."""
    try:
        call()
    except oss.exceptions.OperationError as err:
        return err.unwrap().status_code, err.unwrap().code
    except oss2.exceptions.OssError as err:
        return err.status, err.code
    except ClientError as err:
        return err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"]
    raise AssertionError("the call succeeded; an OSS error was expected")


# -- signatures ----------------------------------------------------------------------------------
def oss_error(call: Callable[[], Any]) -> tuple[int, str, str]:
    """(status, code, EC) of the OSS error oss2 or boto3 raises."""
    try:
        call()
    except oss2.exceptions.OssError as err:
        return err.status, err.code, err.ec
    except ClientError as err:
        return (err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"],
                err.response["Error"].get("EC", ""))
    raise AssertionError("the call succeeded; an OSS error was expected")


V1_RETIRED = (403, "AccessDenied", "0002-00000080")
AWS_V2_NOT_ENABLED = (403, "AccessDenied", "0002-00000032")


@pytest.fixture(scope="module")
def legacy(localcloud: Any) -> str:
    """A bucket created before OSS retired V1 signatures (2025-09-01), which takes them still."""
    name = unique("legacy")
    v2_client(localcloud, root_keys(localcloud)).put_bucket(oss.PutBucketRequest(bucket=name))
    legacy_bucket(localcloud, name)
    return name


def test_v4_signatures_are_accepted(localcloud: Any, bucket: str) -> None:
    keys = root_keys(localcloud)
    v2_client(localcloud, keys).put_object(oss.PutObjectRequest(bucket=bucket, key="sig/v4", body=b"v4"))
    oss2_bucket(localcloud, keys, bucket).put_object("sig/oss2-v4", b"oss2")
    s3_client(localcloud, keys).put_object(Bucket=bucket, Key="sig/sigv4", Body=b"sigv4")
    assert oss2_bucket(localcloud, keys, bucket).get_object("sig/sigv4").read() == b"sigv4"
    listed = s3_client(localcloud, keys).list_objects(Bucket=bucket, Prefix="sig/")
    assert [o["Key"] for o in listed["Contents"]] == ["sig/oss2-v4", "sig/sigv4", "sig/v4"]


def test_a_bucket_made_today_refuses_the_retired_signatures_as_oss_does(localcloud: Any, bucket: str) -> None:
    """OSS V1 (oss2's default, ossfs 1.x's without sigv4) on a bucket created since 2025-09-01: 403 with EC
    0002-00000080, in a header or a presigned URL, and a new bucket cannot be created with it; AWS SigV2
    through the S3-compatible API: 403 with EC 0002-00000032 (not enabled unless Alibaba's support does)."""
    keys = root_keys(localcloud)
    v1 = oss2_bucket(localcloud, keys, bucket, version="v1")
    assert oss_error(lambda: v1.put_object("sig/v1", b"v1")) == V1_RETIRED
    assert oss_error(lambda: v1.get_object("sig/v4")) == V1_RETIRED
    assert oss_error(lambda: oss2_bucket(localcloud, keys, unique("v1new"), version="v1").create_bucket()) \
        == V1_RETIRED
    status, headers, body = raw_request(localcloud, "GET", v1.sign_url("GET", "sig/v4", 60))
    assert status == 403 and headers.get("x-oss-ec") == "0002-00000080" and b"V4" in body
    v1_v2sdk = v2_client(localcloud, keys, signature_version="v1")
    with pytest.raises(oss.exceptions.OperationError) as refused:
        v1_v2sdk.get_object(oss.GetObjectRequest(bucket=bucket, key="sig/v4"))
    assert (refused.value.unwrap().status_code, refused.value.unwrap().ec) == (403, "0002-00000080")
    sigv2 = s3_client(localcloud, keys, signature="s3")
    assert oss_error(lambda: sigv2.put_object(Bucket=bucket, Key="sig/sigv2", Body=b"sigv2")) == AWS_V2_NOT_ENABLED
    url = sigv2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "sig/v4"}, ExpiresIn=60)
    assert raw_request(localcloud, "GET", url)[1].get("x-oss-ec") == "0002-00000032"
    with pytest.raises(oss2.exceptions.NoSuchKey):  # nothing of the refused writes landed
        oss2_bucket(localcloud, keys, bucket).get_object("sig/v1")


def test_a_v4_signature_for_another_region_is_refused_as_oss_refuses_it(localcloud: Any, bucket: str) -> None:
    """OSS V4 binds the signature to the bucket's region: another region in the credential scope is EC
    0002-00000228 (a header or a presigned URL), and a presigned URL whose region is written as an endpoint's
    `oss-cn-hangzhou`, or names another region than its Host, EC 0002-00000226."""
    keys = root_keys(localcloud)
    oss2_bucket(localcloud, keys, bucket).put_object("region/obj", b"here")
    elsewhere = v2_client(localcloud, keys, region="cn-beijing")
    with pytest.raises(oss.exceptions.OperationError) as refused:
        elsewhere.get_object(oss.GetObjectRequest(bucket=bucket, key="region/obj"))
    assert (refused.value.unwrap().status_code, refused.value.unwrap().ec) == (400, "0002-00000228")
    presigned = elsewhere.presign(oss.GetObjectRequest(bucket=bucket, key="region/obj")).url
    assert raw_request(localcloud, "GET", presigned)[1].get("x-oss-ec") == "0002-00000228"
    endpoint_style = v2_client(localcloud, keys, region=f"oss-{localcloud.region}")
    url = endpoint_style.presign(oss.GetObjectRequest(bucket=bucket, key="region/obj")).url
    assert raw_request(localcloud, "GET", url)[1].get("x-oss-ec") == "0002-00000226"
    port = localcloud.oss_endpoint.rsplit(":", 1)[1]
    shenzhen = v2_client(localcloud, keys, endpoint=f"http://oss-cn-shenzhen.aliyuncs.com:{port}")
    url = shenzhen.presign(oss.GetObjectRequest(bucket=bucket, key="region/obj")).url
    assert url.startswith(f"http://{bucket}.oss-cn-shenzhen.aliyuncs.com:{port}/")
    assert raw_request(localcloud, "GET", url)[1].get("x-oss-ec") == "0002-00000226"
    good = v2_client(localcloud, keys).presign(oss.GetObjectRequest(bucket=bucket, key="region/obj")).url
    assert raw_request(localcloud, "GET", good)[::2] == (200, b"here")


def test_a_legacy_bucket_takes_v1_still(localcloud: Any, legacy: str) -> None:
    keys = root_keys(localcloud)
    v1 = oss2_bucket(localcloud, keys, legacy, version="v1")
    v1.put_object("sig/v1", b"v1")
    assert v2_client(localcloud, keys, signature_version="v1").get_object(
        oss.GetObjectRequest(bucket=legacy, key="sig/v1")).body.read() == b"v1"
    assert raw_request(localcloud, "GET", v1.sign_url("GET", "sig/v1", 60))[::2] == (200, b"v1")
    info = v2_client(localcloud, keys).get_bucket_info(oss.GetBucketInfoRequest(bucket=legacy))
    assert info.bucket_info.creation_date.date().isoformat() == "2025-08-31"
    sigv2 = s3_client(localcloud, keys, signature="s3")
    assert oss_error(lambda: sigv2.get_object(Bucket=legacy, Key="sig/v1")) == AWS_V2_NOT_ENABLED


@pytest.mark.parametrize("client", ["v2", "oss2", "oss2v1", "s3v4", "s3v2"])
def test_a_wrong_secret_is_signature_does_not_match(localcloud: Any, bucket: str, client: str) -> None:
    """Checked before the signature's version: a retired scheme with a wrong secret is a wrong secret."""
    keys = Keys(localcloud.access_key_id, "not-the-secret")
    calls = {
        "v2": lambda: v2_client(localcloud, keys).get_object(oss.GetObjectRequest(bucket=bucket, key="sig/v4")),
        "oss2": lambda: oss2_bucket(localcloud, keys, bucket).get_object("sig/v4"),
        "oss2v1": lambda: oss2_bucket(localcloud, keys, bucket, version="v1").get_object("sig/v4"),
        "s3v4": lambda: s3_client(localcloud, keys).get_object(Bucket=bucket, Key="sig/v4"),
        "s3v2": lambda: s3_client(localcloud, keys, signature="s3").get_object(Bucket=bucket, Key="sig/v4"),
    }
    assert oss_code(calls[client]) == (403, "SignatureDoesNotMatch")


def test_an_unknown_key_is_invalid_access_key_id(localcloud: Any, bucket: str) -> None:
    keys = Keys("LTAInosuchkey0000000000", "whatever")
    assert oss_code(lambda: oss2_bucket(localcloud, keys, bucket).get_object("sig/v4")) == (403, "InvalidAccessKeyId")
    assert oss_code(lambda: s3_client(localcloud, keys).list_objects(Bucket=bucket)) == (403, "InvalidAccessKeyId")


def test_anonymous_requests_follow_the_bucket_acl(localcloud: Any) -> None:
    b = oss2_bucket(localcloud, root_keys(localcloud), unique("acl"))
    b.create_bucket(oss2.BUCKET_ACL_PRIVATE)
    b.put_object("page.html", b"<html/>")
    url = f"{localcloud.oss_endpoint}/{b.bucket_name}/page.html"
    status, _, body = raw_request(localcloud, "GET", url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    b.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert raw_request(localcloud, "GET", url)[::2] == (200, b"<html/>")
    assert raw_request(localcloud, "PUT", url, body=b"defaced")[0] == 403


# -- presigned URLs and virtual-hosted addressing ------------------------------------------------
def test_presigned_urls_of_every_client(localcloud: Any, bucket: str, legacy: str) -> None:
    keys = root_keys(localcloud)
    oss2_bucket(localcloud, keys, bucket).put_object("presigned/obj", b"shared")
    oss2_v4 = oss2_bucket(localcloud, keys, bucket).sign_url("GET", "presigned/obj", 60)
    v4 = v2_client(localcloud, keys).presign(oss.GetObjectRequest(bucket=bucket, key="presigned/obj")).url
    s3v4 = s3_client(localcloud, keys).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "presigned/obj"}, ExpiresIn=60)
    for url in (oss2_v4, v4, s3v4):
        assert raw_request(localcloud, "GET", url)[::2] == (200, b"shared"), url
    put_url = oss2_bucket(localcloud, keys, bucket).sign_url("PUT", "presigned/upload", 60)
    assert raw_request(localcloud, "PUT", put_url, body=b"via url")[0] == 200
    assert oss2_bucket(localcloud, keys, bucket).get_object("presigned/upload").read() == b"via url"
    # V1 presigned URLs where they are still taken: a legacy bucket.
    oss2_bucket(localcloud, keys, legacy).put_object("presigned/obj", b"old")
    v1 = oss2_bucket(localcloud, keys, legacy, version="v1").sign_url("GET", "presigned/obj", 60)
    assert raw_request(localcloud, "GET", v1)[::2] == (200, b"old")
    for url in (v1, oss2_v4):
        tampered = url.replace("presigned%2Fobj", "presigned%2Fupload").replace("presigned/obj", "presigned/upload")
        assert tampered != url
        assert raw_request(localcloud, "GET", tampered)[0] == 403


def test_expired_presigned_url_is_denied(localcloud: Any, bucket: str) -> None:
    keys = root_keys(localcloud)
    url = v2_client(localcloud, keys).presign(oss.GetObjectRequest(bucket=bucket, key="sig/v4"),
                                              expires=datetime.timedelta(seconds=1)).url
    time.sleep(2.1)
    status, _, body = raw_request(localcloud, "GET", url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"expired" in body


def test_virtual_hosted_requests(localcloud: Any, bucket: str) -> None:
    keys = root_keys(localcloud)
    oss2_bucket(localcloud, keys, bucket).put_object("vhost/obj", b"by host")
    port = localcloud.oss_endpoint.rsplit(":", 1)[1]
    internal = oss2.Bucket(oss2.AuthV4(keys.access_key_id, keys.access_key_secret),
                           f"http://oss-{localcloud.region}-internal.aliyuncs.com:{port}", bucket,
                           region=localcloud.region)
    url = internal.sign_url("GET", "vhost/obj", 60)
    assert url.startswith(f"http://{bucket}.oss-{localcloud.region}-internal.aliyuncs.com:{port}/")
    assert raw_request(localcloud, "GET", url)[::2] == (200, b"by host")
    # An S3 client signing for <bucket>.localhost: botocore's SigV4 over the Host it names.
    request = AWSRequest(method="GET", url=f"http://{bucket}.localhost:{port}/vhost/obj",
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(keys.access_key_id, keys.access_key_secret), "s3", localcloud.region).add_auth(request)
    assert raw_request(localcloud, "GET", request.url, headers=dict(request.headers))[::2] == (200, b"by host")
    listing_url = f"http://{bucket}.localhost:{port}/?prefix=vhost%2F"
    listing = raw_request(localcloud, "GET", listing_url, headers=_signed_headers(keys, listing_url, localcloud.region))
    assert listing[0] == 200 and b"<Key>vhost/obj</Key>" in listing[2]


def test_path_style_on_an_oss_domain_is_refused_as_oss_refuses_it(localcloud: Any, bucket: str) -> None:
    """OSS serves buckets on its own domains virtual-hosted only; the bucket in the path there gets 403
    SecondLevelDomainForbidden (what OSS answers S3 and OSS clients that force path style), before any
    signature is looked at. On an IP address, as the SDKs address it, path style stays."""
    keys = root_keys(localcloud)
    oss2_bucket(localcloud, keys, bucket).put_object("path/obj", b"by path")
    port = localcloud.oss_endpoint.rsplit(":", 1)[1]
    for host in (f"oss-{localcloud.region}.aliyuncs.com", f"oss-{localcloud.region}-internal.aliyuncs.com"):
        status, _, body = raw_request(localcloud, "GET", f"http://{host}:{port}/{bucket}/path/obj")
        assert status == 403, body
        assert b"<Code>SecondLevelDomainForbidden</Code>" in body
        assert b"<Message>Please use virtual hosted style to access.</Message>" in body
    # The service itself (ListBuckets) has no bucket to address.
    assert b"SecondLevelDomainForbidden" not in raw_request(
        localcloud, "GET", f"http://oss-{localcloud.region}.aliyuncs.com:{port}/")[2]
    assert oss2_bucket(localcloud, keys, bucket).get_object("path/obj").read() == b"by path"


def _signed_headers(keys: Keys, url: str, region: str) -> dict[str, str]:
    request = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(keys.access_key_id, keys.access_key_secret), "s3", region).add_auth(request)
    return dict(request.headers)


# -- RAM roles through STS -------------------------------------------------------------------------
def test_role_may_use_its_prefix_with_every_client(localcloud: Any, bucket: str, role: Keys) -> None:
    v2_client(localcloud, role).put_object(oss.PutObjectRequest(bucket=bucket, key="allowed/a", body=b"a"))
    oss2_bucket(localcloud, role, bucket).put_object("allowed/b", b"b")
    s3 = s3_client(localcloud, role)
    s3.put_object(Bucket=bucket, Key="allowed/c", Body=b"c")
    assert s3.get_object(Bucket=bucket, Key="allowed/a")["Body"].read() == b"a"
    assert oss2_bucket(localcloud, role, bucket).get_object("allowed/c").read() == b"c"
    listed = v2_client(localcloud, role).list_objects_v2(oss.ListObjectsV2Request(bucket=bucket, prefix="allowed/"))
    assert [o.key for o in listed.contents] == ["allowed/a", "allowed/b", "allowed/c"]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "allowed/b"}]})
    oss2_bucket(localcloud, role, bucket).delete_object("allowed/c")
    info = v2_client(localcloud, role).get_bucket_info(oss.GetBucketInfoRequest(bucket=bucket))
    assert info.bucket_info.name == bucket


def test_role_may_upload_in_parts_within_its_prefix(localcloud: Any, bucket: str, role: Keys) -> None:
    s3 = s3_client(localcloud, role)
    up = s3.create_multipart_upload(Bucket=bucket, Key="allowed/parts")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="allowed/parts", UploadId=up, PartNumber=1, Body=b"p" * 10)["ETag"]
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="allowed/parts", UploadId=up)["Parts"]] == [1]
    s3.complete_multipart_upload(Bucket=bucket, Key="allowed/parts", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket=bucket, Key="allowed/parts")["Body"].read() == b"p" * 10
    outside = s3.create_multipart_upload
    assert oss_code(lambda: outside(Bucket=bucket, Key="elsewhere/parts")) == (403, "AccessDenied")


@pytest.mark.parametrize("client", ["v2", "oss2", "s3"])
def test_role_is_denied_outside_its_prefix(localcloud: Any, bucket: str, role: Keys, client: str) -> None:
    oss2_bucket(localcloud, root_keys(localcloud), bucket).put_object("private/x", b"x")
    attempts = {
        "v2": [lambda: v2_client(localcloud, role).get_object(oss.GetObjectRequest(bucket=bucket, key="private/x")),
               lambda: v2_client(localcloud, role).put_object(
                   oss.PutObjectRequest(bucket=bucket, key="private/y", body=b"y"))],
        "oss2": [lambda: oss2_bucket(localcloud, role, bucket).get_object("private/x"),
                 lambda: oss2_bucket(localcloud, role, bucket).delete_object("private/x")],
        "s3": [lambda: s3_client(localcloud, role).get_object(Bucket=bucket, Key="private/x"),
               lambda: s3_client(localcloud, role).copy_object(Bucket=bucket, Key="allowed/stolen",
                                                                CopySource={"Bucket": bucket, "Key": "private/x"})],
    }
    for attempt in attempts[client]:
        assert oss_code(attempt) == (403, "AccessDenied")
    assert oss2_bucket(localcloud, root_keys(localcloud), bucket).get_object("private/x").read() == b"x"


def test_explicit_deny_wins_over_the_prefix_allow(localcloud: Any, bucket: str, role: Keys) -> None:
    assert oss_code(lambda: s3_client(localcloud, role).put_object(
        Bucket=bucket, Key="allowed/secret.txt", Body=b"s")) == (403, "AccessDenied")


def test_role_without_bucket_level_actions_is_denied_them(localcloud: Any, bucket: str, role: Keys) -> None:
    assert oss_code(lambda: s3_client(localcloud, role).list_buckets()) == (403, "AccessDenied")
    assert oss_code(lambda: oss2_bucket(localcloud, role, unique("new")).create_bucket()) == (403, "AccessDenied")
    assert oss_code(lambda: v2_client(localcloud, role).delete_bucket(
        oss.DeleteBucketRequest(bucket=bucket))) == (403, "AccessDenied")


def test_a_role_allowed_to_list_buckets_may(localcloud: Any, bucket: str) -> None:
    keys = role_keys(localcloud, allow(["oss:ListBuckets"], ["acs:oss:*:*:*"]))
    assert bucket in [b.name for b in oss2.BucketIterator(oss2_service(localcloud, root_keys(localcloud)))]
    assert bucket in [b["Name"] for b in s3_client(localcloud, keys).list_buckets()["Buckets"]]
    assert account_uid(localcloud)


@pytest.mark.parametrize("client", ["v2", "oss2", "s3v4", "s3v2"])
def test_expired_token_is_refused(localcloud: Any, bucket: str, client: str) -> None:
    keys = role_keys(localcloud, allow(PREFIX_ACTIONS, [f"acs:oss:*:*:{bucket}/allowed/*"]))
    oss2_bucket(localcloud, keys, bucket).put_object("allowed/fresh", b"ok")
    expire(localcloud.state_dir, keys)
    calls = {
        "v2": lambda: v2_client(localcloud, keys).get_object(oss.GetObjectRequest(bucket=bucket, key="allowed/fresh")),
        "oss2": lambda: oss2_bucket(localcloud, keys, bucket).get_object("allowed/fresh"),
        "s3v4": lambda: s3_client(localcloud, keys).get_object(Bucket=bucket, Key="allowed/fresh"),
        "s3v2": lambda: s3_client(localcloud, keys, signature="s3").get_object(Bucket=bucket, Key="allowed/fresh"),
    }
    assert oss_code(calls[client]) == (403, "SecurityTokenExpired")


def test_a_wrong_token_is_refused(localcloud: Any, bucket: str, role: Keys) -> None:
    forged = Keys(role.access_key_id, role.access_key_secret, "CAISforged")
    assert oss_code(lambda: oss2_bucket(localcloud, forged, bucket).get_object("allowed/a")) \
        == (403, "InvalidSecurityToken")
