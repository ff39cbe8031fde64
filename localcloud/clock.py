"""A virtual clock with a time scale.

The 1 h spot protection period and the 5 min reclaim notice play out in seconds when the scale is
large. Virtual time keeps flowing while the daemon is down (as wall time does on a real cloud): it
is anchored to a (real, virtual) pair stored in the state database.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone


class Clock:
    def __init__(self, scale: float = 1.0, anchor_real: float | None = None,
                 anchor_virtual: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("the time scale must be positive")
        now = time.time()
        self.scale = scale
        self.anchor_real = now if anchor_real is None else anchor_real
        self.anchor_virtual = now if anchor_virtual is None else anchor_virtual
        self._lock = threading.Lock()

    def now(self) -> float:
        """Virtual epoch seconds."""
        return self.anchor_virtual + (time.time() - self.anchor_real) * self.scale

    def rescale(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("the time scale must be positive")
        with self._lock:
            virtual = self.now()
            self.anchor_real, self.anchor_virtual, self.scale = time.time(), virtual, scale

    def real_time(self, virtual: float) -> float:
        """The real epoch seconds at which the virtual clock shows `virtual` (what a machine's own clock,
        `date` on an instance, says at that moment)."""
        return self.anchor_real + (virtual - self.anchor_virtual) / self.scale

    def real_seconds(self, virtual_seconds: float) -> float:
        """How many real seconds a virtual duration lasts."""
        return virtual_seconds / self.scale

    def state(self) -> dict:
        return {"scale": self.scale, "anchor_real": self.anchor_real, "anchor_virtual": self.anchor_virtual}


def iso_minutes(t: float) -> str:
    """ECS/ESS time format: 2024-05-01T08:00Z."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def iso_seconds(t: float) -> str:
    """UTC with seconds: 2024-05-01T08:00:00Z (STS expirations, metadata)."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    raise ValueError(f"not an ISO 8601 UTC time: {text!r}")
