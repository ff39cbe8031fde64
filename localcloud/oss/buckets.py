"""Bucket operations: create, describe, ACL, tags, delete, and the list of buckets."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import ApiError
from . import xmlio
from .call import Call, Reply
from .errors import invalid_argument
from .meta import VERSIONED, Bucket
from .service import check_bucket_name

ACLS = ("private", "public-read", "public-read-write")
MAX_TAGS = 20


def _xml(body: bytes) -> Reply:
    return Reply(body=body, content_type="application/xml")


def _acl_from(call: Call, default: str | None) -> str | None:
    acl = call.oss_header("acl") or default
    if acl is not None and acl not in ACLS:
        raise invalid_argument(f"The ACL {acl!r} is not valid; use one of {', '.join(ACLS)}.")
    return acl


def _endpoints(call: Call) -> list[xmlio.Child]:
    loc = call.svc.location
    return [("ExtranetEndpoint", f"{loc}.aliyuncs.com"), ("IntranetEndpoint", f"{loc}-internal.aliyuncs.com")]


def list_buckets(call: Call) -> Reply:
    q = call.query
    prefix, marker = q.get("prefix", ""), q.get("marker", "")
    max_keys = int(q.get("max-keys") or 100)
    names = [b for b in call.svc.meta.buckets() if b.name.startswith(prefix) and b.name > marker]
    page, truncated = names[:max_keys], len(names) > max_keys
    buckets = [[("CreationDate", xmlio.iso_time(b.created)), *_endpoints(call), ("Location", call.svc.location),
                ("Name", b.name), ("Region", call.svc.region), ("StorageClass", b.storage_class)] for b in page]
    return _xml(xmlio.document("ListAllMyBucketsResult", [
        ("Prefix", prefix if "prefix" in q else None), ("Marker", marker if "marker" in q else None),
        ("MaxKeys", max_keys if "max-keys" in q else None), ("IsTruncated", truncated if truncated else None),
        ("NextMarker", page[-1].name if truncated else None),
        ("Owner", call.svc.owner()), ("Buckets", xmlio.repeat("Bucket", buckets)),
    ]))


def put_bucket(call: Call) -> Reply:
    check_bucket_name(call.bucket)
    storage_class, redundancy = "Standard", "LRS"
    raw = call.body.read_all(64 * 1024)
    if raw.strip():
        conf = xmlio.parse(raw, "CreateBucketConfiguration")
        storage_class = xmlio.text(conf, "StorageClass", storage_class) or storage_class
        redundancy = xmlio.text(conf, "DataRedundancyType", redundancy) or redundancy
    acl = _acl_from(call, "private") or "private"
    with call.svc.meta.transaction():
        if call.svc.meta.bucket(call.bucket) is not None:
            raise ApiError("BucketAlreadyExists", f"The requested bucket name is not available: {call.bucket}. "
                           "The bucket namespace is shared by all users of the system; choose another name.", 409)
        call.svc.meta.put_bucket(Bucket(call.bucket, time.time(), acl, storage_class, redundancy))
    return Reply(headers={"Location": f"/{call.bucket}"})


def head_bucket(call: Call) -> Reply:
    call.svc.bucket(call.bucket)
    return Reply(headers={"x-oss-bucket-region": call.svc.region, "x-amz-bucket-region": call.svc.region})


def get_bucket_info(call: Call) -> Reply:
    b = call.svc.bucket(call.bucket)
    return _xml(xmlio.document("BucketInfo", [("Bucket", [
        ("AccessMonitor", "Disabled"), ("CreationDate", xmlio.iso_time(b.created)), *_endpoints(call),
        ("Location", call.svc.location), ("StorageClass", b.storage_class), ("TransferAcceleration", "Disabled"),
        ("CrossRegionReplication", "Disabled"), ("DataRedundancyType", b.redundancy), ("Name", b.name),
        ("ResourceGroupId", "rg-default"), ("Comment", ""), ("Versioning", None),
        ("Owner", [("DisplayName", call.svc.owner_id), ("ID", call.svc.owner_id)]),
        ("AccessControlList", [("Grant", b.acl)]),
        ("ServerSideEncryptionRule", [("SSEAlgorithm", "None")]),
        ("BucketPolicy", [("LogBucket", ""), ("LogPrefix", "")]),
    ])]))


def get_bucket_location(call: Call) -> Reply:
    call.svc.bucket(call.bucket)
    return _xml(xmlio.leaf("LocationConstraint", call.svc.location))


def get_bucket_acl(call: Call) -> Reply:
    b = call.svc.bucket(call.bucket)
    if call.s3:
        grants = [[("Grantee", [("ID", call.svc.owner_id), ("DisplayName", call.svc.owner_id)]),
                   ("Permission", "FULL_CONTROL")]]
        return _xml(xmlio.document("AccessControlPolicy", [
            ("Owner", call.svc.owner()), ("AccessControlList", xmlio.repeat("Grant", grants))]))
    return _xml(xmlio.document("AccessControlPolicy", [
        ("Owner", call.svc.owner()), ("AccessControlList", [("Grant", b.acl)])]))


def put_bucket_acl(call: Call) -> Reply:
    with call.svc.meta.transaction():
        b = call.svc.bucket(call.bucket)
        b.acl = _acl_from(call, b.acl) or b.acl
        call.svc.meta.put_bucket(b)
    return Reply()


def put_bucket_tags(call: Call) -> Reply:
    doc = xmlio.parse(call.body.read_all(64 * 1024), "Tagging")
    tags: dict[str, str] = {}
    for tag_set in xmlio.children(doc, "TagSet"):
        for tag in xmlio.children(tag_set, "Tag"):
            key = xmlio.text(tag, "Key")
            if not key or len(key) > 64 or len(xmlio.text(tag, "Value")) > 128:
                raise ApiError("InvalidTag", "A tag key has 1 to 64 characters and a value at most 128.", 400)
            tags[key] = xmlio.text(tag, "Value")
    if len(tags) > MAX_TAGS:
        raise ApiError("InvalidTag", f"A bucket has at most {MAX_TAGS} tags.", 400)
    with call.svc.meta.transaction():
        b = call.svc.bucket(call.bucket)
        b.tags = tags
        call.svc.meta.put_bucket(b)
    return Reply()


def get_bucket_tags(call: Call) -> Reply:
    b = call.svc.bucket(call.bucket)
    tags = [[("Key", k), ("Value", v)] for k, v in sorted(b.tags.items())]
    return _xml(xmlio.document("Tagging", [("TagSet", xmlio.repeat("Tag", tags))]))


def delete_bucket_tags(call: Call) -> Reply:
    with call.svc.meta.transaction():
        b = call.svc.bucket(call.bucket)
        wanted = call.query.get("tagging", "")
        b.tags = {k: v for k, v in b.tags.items() if wanted and k not in wanted.split(",")}
        call.svc.meta.put_bucket(b)
    return Reply(status=204)


def put_bucket_versioning(call: Call) -> Reply:
    """Enable or suspend versioning. A bucket once versioned is never unversioned again (OSS's
    PutBucketVersioning); localcloud keeps the status, not the old versions of objects."""
    doc = xmlio.parse(call.body.read_all(64 * 1024), "VersioningConfiguration")
    status = xmlio.text(doc, "Status")
    if status not in VERSIONED:
        raise ApiError("MalformedXML", f"The versioning status must be Enabled or Suspended, not {status!r}.", 400)
    with call.svc.meta.transaction():
        call.svc.bucket(call.bucket)
        call.svc.meta.set_versioning(call.bucket, status)
    return Reply()


def get_bucket_versioning(call: Call) -> Reply:
    call.svc.bucket(call.bucket)
    status = call.svc.meta.versioning(call.bucket)
    return _xml(xmlio.document("VersioningConfiguration", [("Status", status)] if status else []))


def delete_bucket(call: Call) -> Reply:
    with call.svc.meta.transaction():
        call.svc.bucket(call.bucket)
        if not call.svc.meta.bucket_is_empty(call.bucket):
            raise ApiError("BucketNotEmpty", f"The bucket you tried to delete is not empty: {call.bucket}. Delete "
                           "its objects and abort its multipart uploads first.", 409)
        call.svc.meta.delete_bucket(call.bucket)
    return Reply(status=204)


HANDLERS: dict[str, Callable[[Call], Reply]] = {
    "ListBuckets": list_buckets, "PutBucket": put_bucket, "HeadBucket": head_bucket,
    "GetBucketInfo": get_bucket_info, "GetBucketLocation": get_bucket_location,
    "GetBucketAcl": get_bucket_acl, "PutBucketAcl": put_bucket_acl,
    "PutBucketTags": put_bucket_tags, "GetBucketTags": get_bucket_tags, "DeleteBucketTags": delete_bucket_tags,
    "PutBucketVersioning": put_bucket_versioning, "GetBucketVersioning": get_bucket_versioning,
    "DeleteBucket": delete_bucket,
}
