"""RAM policy evaluation, shared by the RPC APIs and OSS.

Policy language version 1: statements with Effect, Action and Resource (strings or lists, `*`
and `?` wildcards; actions compare case-insensitively) and an optional Condition. An explicit Deny
wins; without an Allow the answer is deny.

Conditions as RAM evaluates them: every operator of a block and every key of an operator must hold
(AND), one of a key's values is enough (OR). A key the request does not carry fails the condition,
except for the negated operators (StringNotEquals, StringNotLike), which it satisfies. The string
operators and Bool are evaluated, with the keys the caller gives (OSS gives oss:Prefix and
oss:Delimiter on listings); an operator RAM does not know makes the document malformed.
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


STRING_OPERATORS = {
    "StringEquals": lambda value, wanted: value == wanted,
    "StringNotEquals": lambda value, wanted: value != wanted,
    "StringEqualsIgnoreCase": lambda value, wanted: value.lower() == wanted.lower(),
    "StringNotEqualsIgnoreCase": lambda value, wanted: value.lower() != wanted.lower(),
    "StringLike": lambda value, wanted: bool(_pattern(wanted, False).match(value)),
    "StringNotLike": lambda value, wanted: not _pattern(wanted, False).match(value),
    "Bool": lambda value, wanted: value.lower() == wanted.lower(),
}
NEGATED = ("StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike")
# Operators RAM documents that localcloud does not evaluate: a statement using them never matches.
UNEVALUATED = ("NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan",
               "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals",
               "DateGreaterThan", "DateGreaterThanEquals", "IpAddress", "NotIpAddress")


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, keys in condition.items():
        check = STRING_OPERATORS.get(operator)
        if check is None:
            return False
        for key, wanted in keys.items():
            value = context.get(key)
            if value is None:
                if operator in NEGATED:
                    continue
                return False
            values = _as_list(wanted)
            if operator in NEGATED:
                if not all(check(value, str(w)) for w in values):
                    return False
            elif not any(check(value, str(w)) for w in values):
                return False
    return True


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
        condition = st.get("Condition", {})
        if not isinstance(condition, dict) or any(
                (op not in STRING_OPERATORS and op not in UNEVALUATED) or not isinstance(keys, dict)
                for op, keys in condition.items()):
            raise ApiError("MalformedPolicyDocument", f"The Condition {json.dumps(condition)[:200]} is not valid: "
                           "operators (StringEquals, StringLike, Bool, ...) map condition keys to values.")
    return doc


def is_allowed(documents: list[dict], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    """Whether the documents allow `action` on `resource`, for a request carrying the condition keys `context`."""
    allowed = False
    for doc in documents:
        for st in doc.get("Statement", []):
            if not _matches(st.get("Action"), action, True):
                continue
            if "Resource" in st and not _matches(st["Resource"], resource, False):
                continue
            if st.get("Condition") and not _condition_holds(st["Condition"], context or {}):
                continue
            if st.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed
