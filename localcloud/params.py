"""Typed access to the flattened parameters of an RPC request.

Lists arrive flattened (`VSwitchIds.1`, `Tag.1.Key`), a few ECS parameters as JSON strings
(`InstanceIds=["i-1"]`), booleans as `true`/`True`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import ApiError, invalid, missing


def is_length(text: str) -> bool:
    """Whether a Content-Length header's value is a length: ASCII digits only (not `-1`, `abc` or `\u00b2`)."""
    text = text.strip()
    return text.isascii() and text.isdigit()


def host_name(host_header: str) -> str:
    """The name a Host header gives, lower case and without its port ("" for an IPv6 literal, which names
    no host): what the endpoints and the front door route and check by."""
    host = host_header.strip().lower()
    return "" if host.startswith("[") else host.rsplit(":", 1)[0]

class Params:
    def __init__(self, raw: dict[str, str]) -> None:
        self.raw = raw

    def __contains__(self, name: str) -> bool:
        return name in self.raw

    def str(self, name: str, default: str | None = None, *, required: bool = False,
            choices: tuple[str, ...] | None = None) -> str | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise missing(name)
            return default
        if choices and value not in choices:
            raise invalid(name, f"Valid values: {', '.join(choices)}.")
        return value

    def int(self, name: str, default: int | None = None, *, required: bool = False,
            minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self.str(name, required=required)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise invalid(name, "It must be an integer.") from None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise invalid(name, f"It must be between {minimum} and {maximum}.")
        return number

    def float(self, name: str, default: float | None = None) -> float | None:
        value = self.str(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise invalid(name, "It must be a number.") from None

    def bool(self, name: str, default: bool | None = None) -> bool | None:
        value = self.str(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise invalid(name, "It must be true or false.")
        return lowered == "true"

    def list(self, name: str) -> list[str]:
        """`Name.1`, `Name.2`, ... in index order; also a JSON array in `Name` itself."""
        if name in self.raw:
            return self.json_list(name)
        pattern = re.compile(rf"^{re.escape(name)}\.(\d+)$")
        items = sorted((int(m.group(1)), v) for k, v in self.raw.items() if (m := pattern.match(k)))
        return [v for _, v in items]

    def objects(self, name: str) -> list[dict[str, str]]:
        """`Name.1.Key`, `Name.1.Value`, ... as a list of dicts in index order."""
        pattern = re.compile(rf"^{re.escape(name)}\.(\d+)\.(.+)$")
        found: dict[int, dict[str, str]] = {}
        for key, value in self.raw.items():
            if m := pattern.match(key):
                found.setdefault(int(m.group(1)), {})[m.group(2)] = value
        return [found[i] for i in sorted(found)]

    def nested(self, name: str) -> dict[str, str]:
        """`Name.Field` values as a dict (e.g. `SystemDisk.Category`, `CapacityOptions.X`)."""
        prefix = f"{name}."
        return {k[len(prefix):]: v for k, v in self.raw.items() if k.startswith(prefix)}

    def json_list(self, name: str) -> list[Any]:
        value = self.raw.get(name)
        if value is None or value == "":
            return []
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = [value]
        if not isinstance(parsed, list):
            raise ApiError(f"InvalidParameter.{name}", f"The specified parameter \"{name}\" must be a JSON array.")
        return parsed

    def tags(self, name: str = "Tag") -> list[dict[str, str]]:
        return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in self.objects(name) if t.get("Key")]
