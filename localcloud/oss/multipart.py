"""Multipart uploads: initiate, upload part (or copy a range into one), complete, abort, list.

Parts are blobs of their own; completion concatenates them into one new blob and swaps the
metadata in one transaction (object in, upload and parts out), so a crash leaves either the
upload (retry the completion) or the object, never a partial object.

`x-oss-forbid-overwrite: true` refuses a taken key at initiation and, in the completion's transaction,
at completion; a refused completion keeps the upload (retry it without the header, or abort it).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from urllib.parse import quote

from ..errors import ApiError
from . import xmlio
from .blobs import combine_crc64, multipart_etag
from .call import Call, Reply
from .errors import EC_COMPLETE_TARGET_EXISTS, invalid_argument, no_such_upload
from .meta import ObjectRecord, Part, Upload
from .objects import check_key, commit_object, copy_source, receive, refuse_taken

MIN_PART_SIZE = 100 * 1024     # OSS's minimum for every part but the last
MAX_PARTS = 10000
_COPY_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def _xml(root: str, children: list[xmlio.Child]) -> Reply:
    return Reply(content_type="application/xml", body=xmlio.document(root, children))


def _encode(call: Call, value: str) -> str:
    return quote(value, safe="/") if call.query.get("encoding-type") == "url" else value


def _upload(call: Call) -> Upload:
    up = call.svc.meta.upload(call.query.get("uploadId", ""))
    if up is None or (up.bucket, up.key) != (call.bucket, call.key):
        raise no_such_upload(call.query.get("uploadId", ""))
    return up


def initiate(call: Call) -> Reply:
    call.svc.bucket(call.bucket)
    check_key(call.key)
    refuse_taken(call, call.forbid_overwrite(), ec="")
    up = Upload(uuid.uuid4().hex.upper(), call.bucket, call.key, time.time(), call.stored_headers(),
                call.user_meta())
    call.svc.meta.add_upload(up)
    return _xml("InitiateMultipartUploadResult", [
        ("Bucket", call.bucket), ("Key", _encode(call, call.key)), ("UploadId", up.upload_id),
        ("EncodingType", "url" if call.query.get("encoding-type") == "url" else None)])


def _part_number(call: Call) -> int:
    raw = call.query.get("partNumber", "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PARTS:
        raise invalid_argument(f"Part number must be an integer between 1 and {MAX_PARTS}: {raw!r}.")
    return int(raw)


def upload_part(call: Call) -> Reply:
    number = _part_number(call)
    up = _upload(call)
    if call.oss_header("copy-source"):
        return _upload_part_copy(call, up, number)
    w = receive(call)
    if not call.svc.meta.put_part(Part(up.upload_id, number, w.size, w.md5_hex, w.crc64, time.time(), w.blob)):
        raise no_such_upload(up.upload_id)
    return Reply(headers={"ETag": call.etag(w.md5_hex), "x-oss-hash-crc64ecma": str(w.crc64)})


def _upload_part_copy(call: Call, up: Upload, number: int) -> Reply:
    src_bucket, src_key = copy_source(call)
    with call.svc.meta.lock:
        call.svc.bucket(src_bucket)
        src = call.svc.meta.object(src_bucket, src_key)
        if src is None:
            raise ApiError("NoSuchKey", f"The specified copy source does not exist: {src_key}.", 404)
        handle = call.svc.blobs.open(src.blob)
    start, length = 0, src.size
    spec = call.oss_header("copy-source-range")
    if spec:
        m = _COPY_RANGE.match(spec)
        if not m or int(m.group(1)) > int(m.group(2)) or int(m.group(2)) >= src.size:
            handle.close()
            raise ApiError("InvalidRange", f"The copy source range is not satisfiable: {spec!r}.", 416)
        start, length = int(m.group(1)), int(m.group(2)) - int(m.group(1)) + 1
    with handle:
        w = call.svc.blobs.copy_range(handle, start, length)
    now = time.time()
    if not call.svc.meta.put_part(Part(up.upload_id, number, w.size, w.md5_hex, w.crc64, now, w.blob)):
        raise no_such_upload(up.upload_id)
    return _xml("CopyPartResult", [("LastModified", xmlio.iso_time(now)), ("ETag", call.etag(w.md5_hex))])


def _requested(call: Call) -> list[tuple[int, str]] | None:
    """(part number, ETag) pairs the completion names, in its order; None for `x-oss-complete-all: yes`."""
    if call.oss_header("complete-all").lower() == "yes":
        return None
    doc = xmlio.parse(call.body.read_all(4 * 1024 * 1024), "CompleteMultipartUpload")
    wanted = []
    for node in xmlio.children(doc, "Part"):
        raw_number = xmlio.text(node, "PartNumber")
        if not raw_number.isdigit():
            raise ApiError("MalformedXML", f"PartNumber is not a number: {raw_number!r}.", 400)
        wanted.append((int(raw_number), xmlio.text(node, "ETag").strip().strip('"').lower()))
    if not wanted:
        raise ApiError("MalformedXML", "The completion names no parts.", 400)
    return wanted


def _match(wanted: list[tuple[int, str]] | None, stored: dict[int, Part]) -> list[Part]:
    if wanted is None:
        return [stored[n] for n in sorted(stored)]
    chosen: list[Part] = []
    for number, etag in wanted:
        part = stored.get(number)
        if part is None or part.etag != etag:
            raise ApiError("InvalidPart", f"Part {number} was not uploaded or its ETag does not match.", 400)
        if chosen and number <= chosen[-1].part_number:
            raise ApiError("InvalidPartOrder", "The list of parts was not in ascending order.", 400)
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise ApiError("EntityTooSmall", f"Part {part.part_number} is {part.size} bytes; every part but the "
                           f"last must be at least {MIN_PART_SIZE} bytes.", 400)
    if not chosen:
        raise ApiError("InvalidPart", "The upload has no parts to complete.", 400)
    return chosen


def complete(call: Call) -> Reply:
    up = _upload(call)
    forbid = call.forbid_overwrite()
    wanted = _requested(call)
    refuse_taken(call, forbid, EC_COMPLETE_TARGET_EXISTS)
    with ExitStack() as stack:
        with call.svc.meta.lock:
            parts = _match(wanted, {p.part_number: p for p in call.svc.meta.parts(up.upload_id)})
            handles = [stack.enter_context(call.svc.blobs.open(p.blob)) for p in parts]
        blob = call.svc.blobs.concat(handles)
    etag = multipart_etag([p.etag for p in parts])
    crc = combine_crc64((p.crc64, p.size) for p in parts)
    rec = ObjectRecord(call.bucket, call.key, sum(p.size for p in parts), etag, crc, time.time(), "Multipart",
                       up.headers, up.meta, blob)
    with call.svc.meta.transaction():
        if call.svc.meta.upload(up.upload_id) is None:  # completed or aborted by another request meanwhile
            call.svc.blobs.delete(blob)
            raise no_such_upload(up.upload_id)
        commit_object(call, rec, forbid, EC_COMPLETE_TARGET_EXISTS)
        call.svc.meta.drop_upload(up.upload_id)
    return Reply(content_type="application/xml", headers={"x-oss-hash-crc64ecma": str(crc)},
                 body=xmlio.document("CompleteMultipartUploadResult", [
                     ("EncodingType", "url" if call.query.get("encoding-type") == "url" else None),
                     ("Location", f"/{call.bucket}/{quote(call.key)}"), ("Bucket", call.bucket),
                     ("Key", _encode(call, call.key)), ("ETag", call.etag(etag))]))


def abort(call: Call) -> Reply:
    up = _upload(call)
    call.svc.meta.drop_upload(up.upload_id)
    return Reply(status=204)


def _int_param(call: Call, name: str, default: int, top: int) -> int:
    raw = call.query.get(name) or str(default)
    if not raw.isdigit():
        raise invalid_argument(f"{name} must be an integer: {raw!r}.")
    return min(int(raw), top)


def list_parts(call: Call) -> Reply:
    up = _upload(call)
    marker = _int_param(call, "part-number-marker", 0, MAX_PARTS)
    max_parts = _int_param(call, "max-parts", 1000, 1000)
    parts = [p for p in call.svc.meta.parts(up.upload_id) if p.part_number > marker]
    page, truncated = parts[:max_parts], len(parts) > max_parts
    items = [[("PartNumber", p.part_number), ("LastModified", xmlio.iso_time(p.mtime)),
              ("ETag", call.etag(p.etag)), ("HashCrc64ecma", p.crc64), ("Size", p.size)] for p in page]
    return _xml("ListPartsResult", [
        ("Bucket", call.bucket), ("Key", _encode(call, call.key)), ("UploadId", up.upload_id),
        ("PartNumberMarker", marker), ("NextPartNumberMarker", page[-1].part_number if page else marker),
        ("MaxParts", max_parts), ("IsTruncated", truncated),
        ("EncodingType", "url" if call.query.get("encoding-type") == "url" else None),
        *xmlio.repeat("Part", items)])


def list_uploads(call: Call) -> Reply:
    call.svc.bucket(call.bucket)
    q = call.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
    max_uploads = _int_param(call, "max-uploads", 1000, 1000)
    entries: list[Upload | str] = []
    for up in call.svc.meta.uploads(call.bucket):
        if not up.key.startswith(prefix) or (up.key, up.upload_id) <= (key_marker, id_marker if id_marker else "~"):
            continue
        cut = up.key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = up.key[:cut + len(delimiter)]
            if common not in entries:
                entries.append(common)
            continue
        entries.append(up)
    page, truncated = entries[:max_uploads], len(entries) > max_uploads
    last = page[-1] if page else None
    uploads = [[("Key", _encode(call, u.key)), ("UploadId", u.upload_id), ("StorageClass", "Standard"),
                ("Initiated", xmlio.iso_time(u.initiated))] for u in page if isinstance(u, Upload)]
    prefixes = [[("Prefix", _encode(call, p))] for p in page if isinstance(p, str)]
    return _xml("ListMultipartUploadsResult", [
        ("Bucket", call.bucket), ("KeyMarker", _encode(call, key_marker)), ("UploadIdMarker", id_marker),
        ("NextKeyMarker", _encode(call, last.key if isinstance(last, Upload) else (last or ""))),
        ("NextUploadIdMarker", last.upload_id if isinstance(last, Upload) else ""),
        ("Delimiter", _encode(call, delimiter)), ("Prefix", _encode(call, prefix)), ("MaxUploads", max_uploads),
        ("IsTruncated", truncated), ("EncodingType", "url" if q.get("encoding-type") == "url" else None),
        *xmlio.repeat("Upload", uploads), *xmlio.repeat("CommonPrefixes", prefixes)])


HANDLERS: dict[str, Callable[[Call], Reply]] = {
    "InitiateMultipartUpload": initiate, "UploadPart": upload_part, "UploadPartCopy": upload_part,
    "CompleteMultipartUpload": complete, "AbortMultipartUpload": abort, "ListParts": list_parts,
    "ListMultipartUploads": list_uploads,
}
