"""Instance backends: what an ECS instance is made of.

The API keeps the instance record; a backend makes (or pretends to make) the machine and reports
how far it has come. `records` only moves records through the lifecycle; `containers` runs each
instance as a podman systemd container behind the same interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import InstanceBackend
from .records import RecordsBackend

if TYPE_CHECKING:
    from ..cloud import Cloud

BACKENDS = ("containers", "records")


def make_backend(name: str, cloud: Cloud) -> InstanceBackend:
    if name == "records":
        return RecordsBackend()
    if name == "containers":
        from .containers import ContainersBackend
        return ContainersBackend(cloud)
    raise ValueError(f"unknown instance backend {name!r} (known: {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "InstanceBackend", "RecordsBackend", "make_backend"]
