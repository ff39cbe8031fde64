"""OSS reads shared by the modules: list the objects under a prefix, read the end of an object."""

from __future__ import annotations

from typing import Any

GONE = ("NoSuchKey", "NoSuchBucket", "NotFound", "404")


def list_objects(module: Any, bucket: str, prefix: str, delimiter: str | None = None
                 ) -> tuple[list[dict[str, Any]], list[str]]:
    """(objects: key, size, etag, last_modified; common prefixes) under `prefix`, every page."""
    import alibabacloud_oss_v2 as oss
    objects: list[dict[str, Any]] = []
    prefixes: list[str] = []
    token = None
    while True:
        page = module.oss_call("list_objects_v2", oss.ListObjectsV2Request(
            bucket=bucket, prefix=prefix or None, delimiter=delimiter, continuation_token=token, max_keys=1000))
        for item in page.contents or []:
            objects.append({"key": item.key, "size": item.size, "etag": (item.etag or "").strip('"').lower(),
                            "last_modified": item.last_modified.isoformat() if item.last_modified else None})
        prefixes.extend(p.prefix for p in page.common_prefixes or [])
        if not page.is_truncated:
            return objects, prefixes
        token = page.next_continuation_token


def read_tail(module: Any, bucket: str, key: str, max_bytes: int, missing_ok: bool = True) -> dict[str, Any] | None:
    """{size, content} of the object's last `max_bytes` bytes as text; None when it does not exist (and
    `missing_ok`)."""
    import alibabacloud_oss_v2 as oss
    gone = GONE if missing_ok else ()
    head = module.oss_call("head_object", oss.HeadObjectRequest(bucket=bucket, key=key), missing_ok=gone)
    if head is None:
        return None
    size = head.content_length or 0
    if size == 0:
        return {"size": 0, "content": ""}
    start = max(0, size - max_bytes)
    result = module.oss_call("get_object", oss.GetObjectRequest(bucket=bucket, key=key,
                                                                range_header=f"bytes={start}-{size - 1}"),
                             missing_ok=gone)
    if result is None:
        return None
    return {"size": size, "content": result.body.read().decode("utf-8", "replace")}
