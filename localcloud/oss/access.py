"""Authorization: each operation's RAM action and resource, checked against the caller's policies.

The account's own key may do everything; a RAM role's STS credentials only what its policies
allow (multipart initiate, upload part and complete count as oss:PutObject, as on OSS);
anonymous callers what the bucket's ACL opens to the public.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..errors import ApiError
from .errors import EC_SIGNING_REGION_HOST, access_denied, aws_v2_not_enabled, signing_region, v1_signature_retired
from .routing import region_of_host
from .service import V1_RETIRED_AT
from .signing import AWS_V2, OSS_V1, OSS_V4, oss_v4_region

if TYPE_CHECKING:
    from .call import Call

ACTIONS = {
    "ListBuckets": "oss:ListBuckets", "PutBucket": "oss:PutBucket", "DeleteBucket": "oss:DeleteBucket",
    "HeadBucket": "oss:GetBucketInfo", "GetBucketInfo": "oss:GetBucketInfo",
    "GetBucketLocation": "oss:GetBucketLocation", "GetBucketAcl": "oss:GetBucketAcl",
    "PutBucketAcl": "oss:PutBucketAcl", "PutBucketTags": "oss:PutBucketTagging",
    "GetBucketTags": "oss:GetBucketTagging", "DeleteBucketTags": "oss:DeleteBucketTagging",
    "PutBucketVersioning": "oss:PutBucketVersioning", "GetBucketVersioning": "oss:GetBucketVersioning",
    "ListObjects": "oss:ListObjects", "ListObjectsV2": "oss:ListObjects",
    "ListMultipartUploads": "oss:ListMultipartUploads",
    "PutObject": "oss:PutObject", "CopyObject": "oss:PutObject", "GetObject": "oss:GetObject",
    "HeadObject": "oss:GetObject", "GetObjectMeta": "oss:GetObject", "DeleteObject": "oss:DeleteObject",
    "DeleteMultipleObjects": "oss:DeleteObject", "GetObjectAcl": "oss:GetObjectAcl",
    "InitiateMultipartUpload": "oss:PutObject", "UploadPart": "oss:PutObject", "UploadPartCopy": "oss:PutObject",
    "CompleteMultipartUpload": "oss:PutObject", "AbortMultipartUpload": "oss:AbortMultipartUpload",
    "ListParts": "oss:ListParts",
}
BUCKET_LEVEL = {"ListObjects", "ListObjectsV2", "ListMultipartUploads"}
PUBLIC_READ = {"GetObject", "HeadObject", "GetObjectMeta", "ListObjects", "ListObjectsV2", "HeadBucket"}
PUBLIC_WRITE = PUBLIC_READ | {"PutObject", "DeleteObject", "InitiateMultipartUpload", "UploadPart",
                              "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts"}


def check_signature_version(call: Call, op: str) -> None:
    """Refuse the signatures OSS no longer takes, as OSS does (403 with the EC of each).

    - OSS V1 (header or presigned URL) on a bucket created since 2025-09-01, and on a bucket being
      created: "the V1 signature algorithm is no longer available for new buckets" (OSS, "Guidelines for
      upgrading V1 signatures to V4 signatures"; EC 0002-00000080). A request that names no bucket
      (ListBuckets) is judged by the account's age, and localcloud's account is taken to be older than
      the retirement, so that its legacy buckets (`localcloud` admin route `oss-legacy-bucket`) exist.
    - AWS Signature Version 2 through the S3-compatible API: not enabled unless Alibaba's support enables
      it for the account (EC 0002-00000032), which localcloud never does.
    """
    scheme = call.caller.scheme
    if scheme == AWS_V2:
        raise aws_v2_not_enabled()
    if scheme != OSS_V1 or not call.bucket:
        return
    bucket = call.svc.meta.bucket(call.bucket)
    created = bucket.created if bucket else (time.time() if op == "PutBucket" else None)
    if created is not None and created >= V1_RETIRED_AT:
        raise v1_signature_retired(call.bucket)


def check_signing_region(call: Call) -> None:
    """OSS V4 binds a signature to the bucket's region: a credential scope with another region is refused
    (EC 0002-00000228), and in a presigned URL also one written as `oss-<region>` or other than the region of
    the Host it is sent to (EC 0002-00000226). Every bucket of localcloud is in its one region."""
    if call.caller.scheme != OSS_V4 or not call.bucket:
        return
    region, presigned = oss_v4_region(call.req)
    bucket_region = call.svc.cloud.settings.region
    if presigned and (region.startswith("oss-") or region_of_host(call.req.host) not in (None, region)):
        raise signing_region(region, bucket_region, EC_SIGNING_REGION_HOST)
    if region != bucket_region:
        raise signing_region(region, bucket_region)


def resource(uid: str, bucket: str | None, key: str | None) -> str:
    if not bucket:
        return f"acs:oss:*:{uid}:*"
    return f"acs:oss:*:{uid}:{bucket}/{key}" if key else f"acs:oss:*:{uid}:{bucket}"


def condition_keys(call: Call, op: str) -> dict[str, str]:
    """The OSS condition keys of a request: a listing's prefix (empty when it names none) and delimiter."""
    if op not in ("ListObjects", "ListObjectsV2"):
        return {}
    keys = {"oss:Prefix": call.query.get("prefix", "")}
    if "delimiter" in call.query:
        keys["oss:Delimiter"] = call.query["delimiter"]
    return keys


def authorize(call: Call, op: str, bucket: str | None, key: str | None) -> None:
    """Raise AccessDenied unless the caller may perform `op` on the bucket or object."""
    principal = call.caller.principal
    if principal is None:
        b = call.svc.meta.bucket(bucket) if bucket else None
        allowed = PUBLIC_WRITE if b and b.acl == "public-read-write" else PUBLIC_READ if b and b.acl == "public-read" \
            else set()
        if op not in allowed:
            raise access_denied("You have no right to access this resource because of bucket acl (anonymous "
                                "request; sign it with an AccessKey or STS token).")
        return
    if principal.is_root:
        return
    if op == "DeleteMultipleObjects":
        return  # OSS checks oss:DeleteObject on each key; the handler does, once it has read them
    action = ACTIONS.get(op, f"oss:{op}")
    target = resource(principal.account_uid, bucket, None if op in BUCKET_LEVEL else key)
    try:
        call.svc.cloud.auth.authorize(principal, action, target, condition_keys(call, op))
    except ApiError:
        raise access_denied(f"You have no right to access this resource: {principal.arn} may not perform "
                            f"{action} on {target} (RAM policy).") from None
