"""Helpers shared by the ECS actions: paging, dry runs, tags, status errors.

No actions live here; the ECS modules import it.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
from collections.abc import Sequence
from typing import Any

from ..errors import ApiError, invalid
from ..params import Params

Record = dict[str, Any]

MAX_TAGS = 20


def dry_run(params: Params) -> None:
    """ECS answers a passing DryRun with an error, so a caller can tell validation from action."""
    if params.bool("DryRun", False):
        raise ApiError("DryRunOperation", "Request validation has been passed with DryRun flag set.")


def incorrect_status(resource_id: str, status: str, action: str) -> ApiError:
    # Alibaba answers 403 for IncorrectInstanceStatus on the instance lifecycle APIs.
    return ApiError("IncorrectInstanceStatus", f"The current status of the resource does not support this "
                    f"operation: {resource_id} is {status}, and {action} is not possible in that state.", 403)


def page_numbered(params: Params, items: Sequence[Record], default_size: int = 10,
                  max_size: int = 100) -> tuple[list[Record], dict[str, Any]]:
    """PageNumber/PageSize paging; returns the page and the response's paging fields."""
    number = params.int("PageNumber", 1, minimum=1, maximum=1_000_000)
    size = params.int("PageSize", default_size, minimum=1, maximum=max_size)
    start = (number - 1) * size
    return list(items[start:start + size]), {"PageNumber": number, "PageSize": size, "TotalCount": len(items)}


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        kind, _, number = text.partition(":")
        if kind != "offset":
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("NextToken", "Pass the NextToken of the previous response unchanged.") from None


def uses_token_paging(params: Params) -> bool:
    return "NextToken" in params or "MaxResults" in params


def page_tokened(params: Params, items: Sequence[Record], default_size: int = 10,
                 max_size: int = 100) -> tuple[list[Record], dict[str, Any]]:
    """NextToken/MaxResults paging; NextToken is empty on the last page."""
    size = params.int("MaxResults", default_size, minimum=1, maximum=max_size)
    token = params.str("NextToken")
    start = decode_token(token) if token else 0
    end = start + size
    return list(items[start:end]), {"NextToken": encode_token(end) if end < len(items) else "",
                                    "MaxResults": size, "TotalCount": len(items)}


def page(params: Params, items: Sequence[Record], default_size: int = 10,
         max_size: int = 100) -> tuple[list[Record], dict[str, Any]]:
    """Either paging style, whichever the request uses."""
    if uses_token_paging(params):
        chunk, fields = page_tokened(params, items, default_size, max_size)
        fields.pop("MaxResults")
        fields["PageSize"] = len(chunk)
        return chunk, fields
    return page_numbered(params, items, default_size, max_size)


def tags_param(params: Params, name: str = "Tag") -> list[dict[str, str]]:
    tags = params.tags(name)
    if len(tags) > MAX_TAGS:
        raise invalid(f"{name}.N", f"At most {MAX_TAGS} tags are allowed.")
    for tag in tags:
        if tag["Key"].startswith(("aliyun", "acs:")):
            raise ApiError("InvalidTagKey.Malformed", f"The tag key {tag['Key']!r} may not start with "
                           "'aliyun' or 'acs:'.")
    return tags


def merge_tags(current: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    """Tags with the same key are replaced, as TagResources does."""
    merged = {t["Key"]: t["Value"] for t in current}
    merged.update({t["Key"]: t["Value"] for t in new})
    if len(merged) > MAX_TAGS:
        raise ApiError("InvalidTagCount", f"A resource can carry at most {MAX_TAGS} tags.")
    return [{"Key": k, "Value": v} for k, v in merged.items()]


def matches_tags(record: Record, wanted: list[dict[str, str]]) -> bool:
    """Every wanted tag is present; a wanted tag without a value matches any value."""
    have = {t["Key"]: t["Value"] for t in record.get("Tags", [])}
    return all(t["Key"] in have and (not t["Value"] or have[t["Key"]] == t["Value"]) for t in wanted)


def render_tags(record: Record) -> dict[str, Any]:
    return {"Tag": [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in record.get("Tags", [])]}


def matches_name(value: str, pattern: str | None) -> bool:
    """Name filters accept `*` wildcards, as DescribeInstances' InstanceName does."""
    if not pattern:
        return True
    return fnmatch.fnmatchcase(value, pattern) if "*" in pattern else value == pattern


def id_list(params: Params, name: str, maximum: int = 100) -> list[str]:
    """A list of ids given as a JSON array string (`InstanceIds`) or as `Name.N`."""
    values = [str(v) for v in params.list(name) if str(v)]
    if len(values) > maximum:
        raise invalid(name, f"At most {maximum} ids are allowed.")
    return values
