"""Addressing (path style or bucket in the Host header) and which operation a request is."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import unquote

from ..errors import ApiError
from ..params import host_name
from .service import check_bucket_name

_ALIYUN_HOST = re.compile(r"^(?:(?P<bucket>[^.]+)\.)?(?:oss|s3)-[a-z0-9-]+\.aliyuncs\.com$")
# Sub-resources of APIs this endpoint does not implement: answered with NotImplemented rather than
# mistaken for a listing or a plain object read.
_UNSUPPORTED = {"lifecycle", "cors", "website", "logging", "referer", "policy", "versions",
                "encryption", "replication", "inventory", "worm", "cname", "requestPayment", "qos",
                "object-lock", "notification", "accelerate", "analytics", "metrics", "symlink", "restore",
                "append", "torrent", "retention", "legal-hold", "select", "x-oss-process", "ownershipControls",
                "publicAccessBlock", "intelligent-tiering", "transferAcceleration"}


class Addressing:
    """Finds the bucket in `<bucket>.oss-<region>[-internal].aliyuncs.com` or `<bucket>.<own host>`."""

    def __init__(self, host: str) -> None:
        names = {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
        if host not in ("", "0.0.0.0", "::"):
            names.add(host.lower())
        self.own_names = names

    def bucket_in_host(self, host_header: str) -> str | None:
        host = host_name(host_header)
        try:
            ipaddress.ip_address(host)
            return None
        except ValueError:
            pass
        m = _ALIYUN_HOST.match(host)
        if m:
            return m.group("bucket")
        label, _, rest = host.partition(".")
        return label if rest and any(rest == n or rest.endswith("." + n) for n in self.own_names) else None

    def split(self, host_header: str, raw_path: str) -> tuple[str | None, str | None, bool]:
        """(bucket, key, virtual hosted) of a request."""
        in_host = self.bucket_in_host(host_header)
        path = raw_path[1:] if raw_path.startswith("/") else raw_path
        if in_host:
            return in_host, unquote(path) or None, True
        bucket, _, key = path.partition("/")
        return unquote(bucket) or None, unquote(key) or None, False


_REGION_IN_HOST = re.compile(r"^(?:[^.]+\.)?oss-(?P<region>[a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$")


def region_of_host(host_header: str) -> str | None:
    """The region an OSS domain name names (`oss-cn-hangzhou[-internal].aliyuncs.com`), None for another host."""
    found = _REGION_IN_HOST.match(host_name(host_header))
    return found.group("region") if found else None


def check_addressing(host_header: str, bucket: str | None, virtual: bool) -> None:
    """OSS serves a bucket on its own domain names virtual-hosted only (`<bucket>.oss-<region>.aliyuncs.com`):
    a request that names the bucket in its path there is refused, 403 SecondLevelDomainForbidden (the
    answer clients of OSS's own endpoints get: docs/localcloud.md). Path style stays open on an IP address
    or another host name, as the SDKs use it for an IP."""
    if bucket is None or virtual:
        return
    found = _ALIYUN_HOST.match(host_name(host_header))
    if found and not found.group("bucket"):
        raise ApiError("SecondLevelDomainForbidden", "Please use virtual hosted style to access.", 403)


def operation(method: str, bucket: str | None, key: str | None, q: dict[str, str], copy: bool) -> str:
    """The operation's name (OSS's API names) from the method, the target and the sub-resources."""
    unsupported = _UNSUPPORTED.intersection(q)
    if unsupported:
        raise ApiError("NotImplemented", f"This endpoint does not implement the {sorted(unsupported)[0]!r} "
                       "API.", 501)
    if bucket is None:
        if method in ("GET", "HEAD"):
            return "ListBuckets"
        raise ApiError("MethodNotAllowed", f"{method} is not allowed on the service.", 405)
    check_bucket_name(bucket)
    table = _bucket_op if key is None else _object_op
    op = table(method, q, copy)
    if op is None:
        raise ApiError("MethodNotAllowed", f"The {method} method is not allowed against this resource.", 405)
    return op


def _bucket_op(method: str, q: dict[str, str], copy: bool) -> str | None:
    if method == "PUT":
        return ("PutBucketAcl" if "acl" in q else "PutBucketTags" if "tagging" in q
                else "PutBucketVersioning" if "versioning" in q else "PutBucket")
    if method == "GET":
        for sub, op in (("acl", "GetBucketAcl"), ("bucketInfo", "GetBucketInfo"), ("location", "GetBucketLocation"),
                        ("tagging", "GetBucketTags"), ("uploads", "ListMultipartUploads"),
                        ("versioning", "GetBucketVersioning")):
            if sub in q:
                return op
        return "ListObjectsV2" if q.get("list-type") == "2" else "ListObjects"
    if method == "HEAD":
        return "HeadBucket"
    if method == "DELETE":
        return "DeleteBucketTags" if "tagging" in q else "DeleteBucket"
    if method == "POST" and "delete" in q:
        return "DeleteMultipleObjects"
    return None


def _object_op(method: str, q: dict[str, str], copy: bool) -> str | None:
    if "tagging" in q:
        raise ApiError("NotImplemented", "Object tagging is not implemented by this endpoint.", 501)
    if method == "PUT":
        if "uploadId" in q:
            return "UploadPartCopy" if copy else "UploadPart"
        if "acl" in q:
            raise ApiError("NotImplemented", "Object ACLs are not implemented; use the bucket ACL.", 501)
        return "CopyObject" if copy else "PutObject"
    if method == "GET":
        if "uploadId" in q:
            return "ListParts"
        if "acl" in q:
            return "GetObjectAcl"
        return "GetObjectMeta" if "objectMeta" in q else "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
    if method == "POST":
        if "uploads" in q:
            return "InitiateMultipartUpload"
        if "uploadId" in q:
            return "CompleteMultipartUpload"
    return None
