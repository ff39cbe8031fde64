"""How long a stop takes on this instance, and when it must be over.

`SavePace`: the time from asking the trainer to stop to the lease given back, judged from the trainer's own
clock lines (its steps and saves) and the manifests the agent wrote. `Deadline`: when the instance ends
(a reclaim's termination time) or is removed (a scale-in hook's timeout).

A stop is carried out at the end of the step in progress: that step, the save, the manifest of the saved
checkpoint (read back through the mount) and giving the lease back. A notice or a scale-in hook ends at a
known moment; the handover must be over before it (stopping.Handover)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .cloud import utc_epoch
from .logs import LOG
from .protocol import Event

# Until the trainer has saved once, what a save is taken to cost (seconds): a LoRA adapter of a 7B model
# and its optimizer state written through the mount take seconds to tens of seconds.
UNMEASURED_SAVE = 30.0
# The estimate is the longest of the recent measurements, times a factor, plus what the rest of a handover
# takes (the event log, the lease given back, a poll of the notice): a loaded machine is slower at times.
FACTOR = 1.5
FIXED = 5.0
KEPT = 5  # recent measurements of each kind


class SavePace:
    """The recent durations of the trainer's steps and saves and of the agent's manifests."""

    def __init__(self) -> None:
        self._steps: deque[float] = deque(maxlen=KEPT)
        self._saves: deque[float] = deque(maxlen=KEPT)
        self._manifests: deque[float] = deque(maxlen=KEPT)
        self._last_step: tuple[int, float] | None = None
        self._last_end: float | None = None  # the end of the last step, or of its save
        self._lock = threading.Lock()

    def observe(self, event: str, step: int, when: float) -> None:
        """A clock line of the trainer: `step` N ended, or `save` N ended, at `when` (its epoch seconds)."""
        with self._lock:
            if event == Event.STEP:
                if self._last_end is not None and when > self._last_end:
                    self._steps.append(when - self._last_end)
                self._last_step = (step, when)
                self._last_end = when
            elif event == Event.SAVE:
                if self._last_step is not None and self._last_step[0] == step and when >= self._last_step[1]:
                    self._saves.append(when - self._last_step[1])
                self._last_end = when

    def manifest_written(self, seconds: float) -> None:
        with self._lock:
            self._manifests.append(seconds)

    def stop_seconds(self) -> float:
        """How long a stop asked for now takes, at most, with a margin."""
        with self._lock:
            step = max(self._steps, default=0.0)
            save = max(self._saves, default=UNMEASURED_SAVE)
            manifest = max(self._manifests, default=0.0)
        return FACTOR * (step + save + manifest) + FIXED

    def describe(self) -> str:
        with self._lock:
            parts = [f"step {max(self._steps):.1f}s" if self._steps else "no step yet",
                     f"save {max(self._saves):.1f}s" if self._saves else f"no save yet ({UNMEASURED_SAVE:g}s taken)",
                     f"manifest {max(self._manifests):.1f}s" if self._manifests else "no manifest yet"]
        return ", ".join(parts)


@dataclass
class Deadline:
    """When this instance ends (a reclaim) or is removed (a scale-in hook's timeout), in epoch seconds on this
    machine's clock, and how to ask for more time where that can be had (seconds wanted from now -> the new
    end, or None)."""

    ends_at: float
    what: str
    extend: Callable[[float], float | None] | None = None


def termination_deadline(when: str) -> Deadline | None:
    """The reclaim's moment from spot/termination-time (ECS: 2026-12-01T15:00:00Z, UTC, this machine's clock)."""
    try:
        ends_at = utc_epoch(when)
    except ValueError:
        LOG.warning("cannot read the termination time %r: the handover waits at most train_service_handover_wait",
                    when)
        return None
    return Deadline(ends_at, f"the reclaim at {when.strip()}")
