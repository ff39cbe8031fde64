"""RAM policy evaluation, shared by the RPC APIs and OSS.

Policy language version 1: statements with Effect, Action and Resource (strings or lists, `*`
and `?` wildcards; actions compare case-insensitively). An explicit Deny wins; without an Allow the
answer is deny.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from .errors import ApiError


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _matches(globs: Any, value: str, ignore_case: bool) -> bool:
    return any(_pattern(g, ignore_case).match(value) for g in _as_list(globs))


def parse_document(text: str) -> dict:
    """Parse and validate a policy document; raises MalformedPolicyDocument like RAM does."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ApiError("MalformedPolicyDocument", f"The policy document is not valid JSON: {exc}") from None
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if not isinstance(statements, list) or not statements:
        raise ApiError("MalformedPolicyDocument", "The policy document must contain a non-empty \"Statement\" list.")
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") not in ("Allow", "Deny"):
            raise ApiError("MalformedPolicyDocument", "Each statement needs \"Effect\": \"Allow\" or \"Deny\".")
        if "Action" not in st:
            raise ApiError("MalformedPolicyDocument", "Each statement needs an \"Action\".")
    return doc


def is_allowed(documents: list[dict], action: str, resource: str) -> bool:
    allowed = False
    for doc in documents:
        for st in doc.get("Statement", []):
            if not _matches(st.get("Action"), action, True):
                continue
            if "Resource" in st and not _matches(st["Resource"], resource, False):
                continue
            if st.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed
