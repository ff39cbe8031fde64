"""Object operations: put (streamed), get with ranges, head, delete (one or many), copy.

Put and copy honour `x-oss-forbid-overwrite: true`: a taken key is a 409 FileAlreadyExists, decided in
the transaction that would write the object, so of writers racing to create a key exactly one wins (the
training agent's lease relies on it).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from ..errors import ApiError
from . import access, xmlio
from .blobs import Written
from .call import Call, Reply
from .errors import EC_OBJECT_EXISTS, file_already_exists, invalid_argument, no_such_key
from .meta import ObjectRecord

MAX_PUT_SIZE = 5 * 1024 ** 3
MAX_DELETE_KEYS = 1000
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
RESPONSE_OVERRIDES = {"response-content-type": "Content-Type", "response-content-language": "Content-Language",
                      "response-expires": "Expires", "response-cache-control": "Cache-Control",
                      "response-content-disposition": "Content-Disposition",
                      "response-content-encoding": "Content-Encoding"}


def check_key(key: str) -> None:
    if not key or len(key.encode("utf-8")) > 1023 or key.startswith(("/", "\\")):
        raise ApiError("InvalidObjectName", f"The object name is not valid: {key!r}. It has 1 to 1023 bytes of "
                       "UTF-8 and does not start with / or \\.", 400)


def receive(call: Call) -> Written:
    """Stream the request body into a new blob, checking the digests the client declared."""
    if call.body.pending is None and not call.header("transfer-encoding"):
        raise ApiError("MissingContentLength", "You must provide the Content-Length HTTP header.", 411)
    if (call.body.pending or 0) > MAX_PUT_SIZE:
        raise ApiError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size (5 GB); "
                       "use a multipart upload.", 400)
    declared_sha = call.header("x-amz-content-sha256")
    if declared_sha.startswith("STREAMING-"):
        raise ApiError("NotImplemented", "aws-chunked payloads are not supported here; send the body unsigned or "
                       "with its SHA-256 (boto3: use an http endpoint, or request_checksum_calculation="
                       "'when_required').", 501)
    written = call.svc.blobs.write(call.body.read, want_sha256=bool(_HEX64.match(declared_sha)))
    md5 = call.header("content-md5")
    if md5 and base64.b64encode(bytes.fromhex(written.md5_hex)).decode() != md5:
        call.svc.blobs.delete(written.blob)
        raise ApiError("InvalidDigest", "The Content-MD5 you specified is not the MD5 of the body.", 400)
    if written.sha256_hex is not None and written.sha256_hex != declared_sha:
        call.svc.blobs.delete(written.blob)
        raise ApiError("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match "
                       "what was computed.", 400)
    return written


def _checksum_headers(call: Call, etag: str, crc64: int) -> dict[str, str]:
    return {"ETag": call.etag(etag), "x-oss-hash-crc64ecma": str(crc64)}


def refuse_taken(call: Call, forbid: bool, ec: str = EC_OBJECT_EXISTS) -> None:
    """Refuse a taken key before copying any data; the refusal that counts is commit_object's."""
    if forbid and call.svc.meta.object(call.bucket, call.key) is not None:
        raise file_already_exists(ec)


def commit_object(call: Call, rec: ObjectRecord, forbid: bool = False, ec: str = EC_OBJECT_EXISTS) -> None:
    """Make `rec` visible, unless its bucket went away meanwhile or `forbid` finds its key taken.

    The check and the write are one transaction. A refused record's blob is deleted at once, as nothing
    will point at it (a rollback forgets what `release` was given), unless it is the taken object's own.
    """
    meta = call.svc.meta
    with meta.transaction():
        if meta.bucket(rec.bucket) is None:
            call.svc.blobs.delete(rec.blob)
            call.svc.bucket(rec.bucket)
        taken = meta.object(rec.bucket, rec.key)
        if forbid and taken is not None:
            if taken.blob != rec.blob:
                call.svc.blobs.delete(rec.blob)
            raise file_already_exists(ec)
        meta.put_object(rec)


def put_object(call: Call) -> Reply:
    call.svc.bucket(call.bucket)
    check_key(call.key)
    forbid = call.forbid_overwrite()
    w = receive(call)
    commit_object(call, ObjectRecord(call.bucket, call.key, w.size, w.md5_hex, w.crc64, time.time(), "Normal",
                                     call.stored_headers(), call.user_meta(), w.blob), forbid)
    md5_b64 = base64.b64encode(bytes.fromhex(w.md5_hex)).decode()
    return Reply(headers={**_checksum_headers(call, w.md5_hex, w.crc64), "Content-MD5": md5_b64})


def _parse_range(spec: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a satisfiable single range; None to send the whole object, as OSS does."""
    m = _RANGE.match(spec.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):
        length = int(m.group(2))
        return (max(size - length, 0), size - 1) if length and size else None
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def _preconditions(call: Call, rec: ObjectRecord) -> int | None:
    """304 or 412 when a conditional header says so, else None."""
    etag = rec.etag.lower()
    if_match, if_none = call.header("if-match"), call.header("if-none-match")
    if if_match and if_match.strip('"').lower() != etag and if_match != "*":
        return 412
    if if_none and (if_none.strip('"').lower() == etag or if_none == "*"):
        return 304
    for name, status, newer in (("if-unmodified-since", 412, True), ("if-modified-since", 304, False)):
        value = call.header(name)
        if not value:
            continue
        try:
            since = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            continue
        if (int(rec.mtime) > since) == newer:
            return status
    return None


def object_headers(call: Call, rec: ObjectRecord) -> dict[str, str]:
    headers = {k.title(): v for k, v in rec.headers.items()}
    headers.update(_checksum_headers(call, rec.etag, rec.crc64))
    headers.update({
        "Last-Modified": xmlio.http_time(rec.mtime), "Accept-Ranges": "bytes",
        "x-oss-object-type": rec.type, "x-oss-storage-class": "Standard",
        **call.meta_headers(rec.meta),
    })
    for param, header in RESPONSE_OVERRIDES.items():
        if param in call.query:
            headers[header] = call.query[param]
    return headers


def get_object(call: Call) -> Reply:
    head = call.op != "GetObject"
    with call.svc.meta.lock:
        call.svc.bucket(call.bucket)
        rec = call.svc.meta.object(call.bucket, call.key)
        if rec is None:
            raise no_such_key(call.key)
        handle = None if head else call.svc.blobs.open(rec.blob)
    headers = object_headers(call, rec)
    status = _preconditions(call, rec)
    if status == 412:
        if handle:
            handle.close()
        raise ApiError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold.", 412)
    if status == 304:
        if handle:
            handle.close()
        return Reply(status=304, headers={"ETag": headers["ETag"], "Last-Modified": headers["Last-Modified"]})
    span = _parse_range(call.header("range"), rec.size) if call.header("range") else None
    status, start, length = 200, 0, rec.size
    if span is not None:
        status, start, length = 206, span[0], span[1] - span[0] + 1
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{rec.size}"
    elif call.header("range") and call.header("x-oss-range-behavior") == "standard":
        if handle:
            handle.close()
        raise ApiError("InvalidRange", "The requested range cannot be satisfied.", 416)
    if call.op == "GetObjectMeta":
        keep = ("ETag", "Last-Modified", "x-oss-hash-crc64ecma")
        return Reply(headers={k: headers[k] for k in keep} | {"Content-Length": str(rec.size)})
    if handle is None:
        return Reply(status=status, headers=headers | {"Content-Length": str(length)})
    return Reply(status=status, headers=headers, stream=(handle, start, length))


def delete_object(call: Call) -> Reply:
    call.svc.bucket(call.bucket)
    call.svc.meta.delete_object(call.bucket, call.key)
    return Reply(status=204)


def delete_objects(call: Call) -> Reply:
    call.svc.bucket(call.bucket)
    doc = xmlio.parse(call.body.read_all(2 * 1024 * 1024), "Delete")
    quiet = xmlio.text(doc, "Quiet").lower() == "true"
    keys = [xmlio.text(o, "Key") for o in xmlio.children(doc, "Object")]
    if not keys or len(keys) > MAX_DELETE_KEYS:
        raise ApiError("MalformedXML", f"A delete request names 1 to {MAX_DELETE_KEYS} objects.", 400)
    for key in keys:
        access.authorize(call, "DeleteObject", call.bucket, key)
    for key in keys:
        call.svc.meta.delete_object(call.bucket, key)
    url = call.query.get("encoding-type") == "url"
    deleted = [] if quiet else [[("Key", quote(k, safe="/") if url else k)] for k in keys]
    return Reply(content_type="application/xml", body=xmlio.document("DeleteResult", [
        ("EncodingType", "url" if url else None), *xmlio.repeat("Deleted", deleted)]))


def copy_source(call: Call) -> tuple[str, str]:
    """(bucket, key) of `x-oss-copy-source: /bucket/key` or S3's `x-amz-copy-source: bucket/key[?versionId=]`."""
    raw = call.oss_header("copy-source").split("?", 1)[0]
    bucket, _, key = unquote(raw).lstrip("/").partition("/")
    if not bucket or not key:
        raise invalid_argument(f"The copy source is not valid: {raw!r}; give /bucket/key.")
    access.authorize(call, "GetObject", bucket, key)
    return bucket, key


def _source(call: Call, bucket: str, key: str) -> ObjectRecord:
    call.svc.bucket(bucket)
    src = call.svc.meta.object(bucket, key)
    if src is None:
        raise no_such_key(key)
    return src


def copy_object(call: Call) -> Reply:
    src_bucket, src_key = copy_source(call)
    check_key(call.key)
    call.svc.bucket(call.bucket)
    forbid = call.forbid_overwrite()
    replace = call.oss_header("metadata-directive").upper() == "REPLACE"
    now = time.time()

    def record(src: ObjectRecord, blob: str) -> ObjectRecord:
        headers, meta = (call.stored_headers(), call.user_meta()) if replace else (src.headers, src.meta)
        return ObjectRecord(call.bucket, call.key, src.size, src.etag, src.crc64, now, src.type, headers, meta, blob)

    if (src_bucket, src_key) == (call.bucket, call.key):
        # A copy onto itself changes metadata only (s3fs's chmod, touch): the data stays where it is,
        # and one transaction keeps a concurrent overwrite from freeing it underneath. The docs make no
        # exception for it, so x-oss-forbid-overwrite refuses it: the source itself takes the key.
        with call.svc.meta.transaction():
            src = _source(call, src_bucket, src_key)
            commit_object(call, record(src, src.blob), forbid)
    else:
        refuse_taken(call, forbid)
        with call.svc.meta.lock:
            src = _source(call, src_bucket, src_key)
            handle = call.svc.blobs.open(src.blob)
        with handle:
            blob = call.svc.blobs.concat([handle])
        commit_object(call, record(src, blob), forbid)
    return Reply(content_type="application/xml", headers={"x-oss-hash-crc64ecma": str(src.crc64)},
                 body=xmlio.document("CopyObjectResult", [
                     ("LastModified", xmlio.iso_time(now)), ("ETag", call.etag(src.etag))]))


def get_object_acl(call: Call) -> Reply:
    call.svc.bucket(call.bucket)
    if call.svc.meta.object(call.bucket, call.key) is None:
        raise no_such_key(call.key)
    return Reply(content_type="application/xml", body=xmlio.document("AccessControlPolicy", [
        ("Owner", call.svc.owner()), ("AccessControlList", [("Grant", "default")])]))


HANDLERS: dict[str, Callable[[Call], Reply]] = {
    "PutObject": put_object, "GetObject": get_object, "HeadObject": get_object, "GetObjectMeta": get_object,
    "DeleteObject": delete_object, "DeleteMultipleObjects": delete_objects, "CopyObject": copy_object,
    "GetObjectAcl": get_object_acl,
}
