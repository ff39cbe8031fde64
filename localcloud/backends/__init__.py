"""Instance backends: what an ECS instance is made of.

The API keeps the instance record; a backend makes (or pretends to make) the machine and reports
how far it has come. `records` only moves records through the lifecycle; the container backend
(part 3) runs real systemd containers behind the same interface.
"""

from __future__ import annotations

from .base import InstanceBackend
from .records import RecordsBackend


def make_backend(name: str) -> InstanceBackend:
    if name == "records":
        return RecordsBackend()
    raise ValueError(f"unknown instance backend {name!r} (known: records)")


__all__ = ["InstanceBackend", "RecordsBackend", "make_backend"]
