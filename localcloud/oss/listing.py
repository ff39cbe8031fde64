"""ListObjects (V1 and V2): prefix, delimiter roll-up, markers, continuation tokens, url encoding."""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import quote

from ..errors import ApiError
from . import xmlio
from .call import Call, Reply
from .meta import MetaDB, ObjectRecord

MAX_KEYS = 1000
BATCH = 1000

Entry = ObjectRecord | str   # an object, or a common prefix
Encode = Callable[[str], str]


def _successor(common_prefix: str) -> str:
    """The smallest key after every key that starts with `common_prefix`."""
    return common_prefix[:-1] + chr(ord(common_prefix[-1]) + 1)


def _start(prefix: str, delimiter: str, after: str) -> tuple[str, bool]:
    """Where a listing resumes: after `after`, past its whole roll-up group when it is a common prefix."""
    if delimiter and after.startswith(prefix) and after.endswith(delimiter) \
            and after.find(delimiter, len(prefix)) == len(after) - len(delimiter):
        return _successor(after), True
    if after < prefix:
        return prefix, True
    return after, False


def walk(meta: MetaDB, bucket: str, prefix: str, delimiter: str, after: str, limit: int) -> list[Entry]:
    """Up to `limit` entries in key order after `after`: objects, and common prefixes rolled up at `delimiter`."""
    entries: list[Entry] = []
    cursor, inclusive = _start(prefix, delimiter, after)
    while len(entries) < limit:
        batch = meta.objects_from(bucket, cursor, inclusive, BATCH)
        if not batch:
            break
        for rec in batch:
            if not rec.key.startswith(prefix):
                return entries
            cut = rec.key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                common = rec.key[:cut + len(delimiter)]
                entries.append(common)
                cursor, inclusive = _successor(common), True
                break
            entries.append(rec)
            cursor, inclusive = rec.key, False
            if len(entries) == limit:
                break
    return entries


def _max_keys(call: Call) -> int:
    raw = call.query.get("max-keys") or str(MAX_KEYS)
    if not raw.isdigit() or int(raw) > MAX_KEYS:
        raise ApiError("InvalidArgument", f"max-keys must be an integer from 0 to {MAX_KEYS}: {raw!r}.", 400)
    return int(raw)


def _encoder(call: Call) -> Encode:
    url = call.query.get("encoding-type") == "url"
    if call.query.get("encoding-type") not in (None, "", "url"):
        raise ApiError("InvalidArgument", "encoding-type must be url.", 400)
    return (lambda s: quote(s, safe="/")) if url else (lambda s: s)


def _contents(call: Call, rec: ObjectRecord, enc: Encode, owner: bool) -> list[xmlio.Child]:
    return [("Key", enc(rec.key)), ("LastModified", xmlio.iso_time(rec.mtime)), ("ETag", call.etag(rec.etag)),
            ("Type", rec.type), ("Size", rec.size), ("StorageClass", "Standard"),
            ("Owner", call.svc.owner() if owner else None)]


def _page(call: Call, after: str) -> tuple[list[Entry], bool, str, str, int]:
    call.svc.bucket(call.bucket)
    q = call.query
    prefix, delimiter, max_keys = q.get("prefix", ""), q.get("delimiter", ""), _max_keys(call)
    entries = walk(call.svc.meta, call.bucket, prefix, delimiter, after, max_keys + 1)
    truncated = len(entries) > max_keys
    return entries[:max_keys], truncated, prefix, delimiter, max_keys


def _last(entries: list[Entry]) -> str:
    last = entries[-1]
    return last if isinstance(last, str) else last.key


def _body(call: Call, entries: list[Entry], enc: Encode, owner: bool) -> list[xmlio.Child]:
    objects = [_contents(call, e, enc, owner) for e in entries if not isinstance(e, str)]
    prefixes = [[("Prefix", enc(e))] for e in entries if isinstance(e, str)]
    return [*xmlio.repeat("Contents", objects), *xmlio.repeat("CommonPrefixes", prefixes)]


def list_objects(call: Call) -> Reply:
    enc = _encoder(call)
    marker = call.query.get("marker", "")
    entries, truncated, prefix, delimiter, max_keys = _page(call, marker)
    return Reply(content_type="application/xml", body=xmlio.document("ListBucketResult", [
        ("Name", call.bucket), ("Prefix", enc(prefix)), ("Marker", enc(marker)), ("MaxKeys", max_keys),
        ("Delimiter", enc(delimiter)), ("IsTruncated", truncated),
        ("NextMarker", enc(_last(entries)) if truncated and entries else None),
        ("EncodingType", "url" if call.query.get("encoding-type") == "url" else None),
        *_body(call, entries, enc, owner=True),
    ]))


def _token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _from_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError("InvalidArgument", "The continuation token is not valid.", 400) from None


def list_objects_v2(call: Call) -> Reply:
    enc = _encoder(call)
    q = call.query
    token, start_after = q.get("continuation-token"), q.get("start-after", "")
    entries, truncated, prefix, delimiter, max_keys = _page(call, _from_token(token) if token else start_after)
    return Reply(content_type="application/xml", body=xmlio.document("ListBucketResult", [
        ("Name", call.bucket), ("Prefix", enc(prefix)), ("StartAfter", enc(start_after) if start_after else None),
        ("ContinuationToken", token), ("MaxKeys", max_keys), ("Delimiter", enc(delimiter)),
        ("IsTruncated", truncated),
        ("NextContinuationToken", _token(_last(entries)) if truncated and entries else None),
        ("EncodingType", "url" if q.get("encoding-type") == "url" else None), ("KeyCount", len(entries)),
        *_body(call, entries, enc, owner=q.get("fetch-owner") == "true"),
    ]))
