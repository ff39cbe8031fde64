"""A backend with no machines: instances move through the lifecycle on a timer.

Timings are in real seconds so that tests see every state without waiting long.
"""

from __future__ import annotations

import threading
import time

from .base import Instance, InstanceBackend

PENDING_SECONDS = 0.3
STARTING_SECONDS = 0.3
STOPPING_SECONDS = 0.3


class RecordsBackend(InstanceBackend):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # instance id -> (target state, real time of the last transition request)
        self._machines: dict[str, tuple[str, float]] = {}

    def _set(self, instance: Instance, target: str) -> None:
        with self._lock:
            self._machines[instance["InstanceId"]] = (target, time.monotonic())

    def create(self, instance: Instance) -> None:
        self._set(instance, "create")

    def start(self, instance: Instance) -> None:
        self._set(instance, "start")

    def stop(self, instance: Instance, force: bool) -> None:
        self._set(instance, "kill" if force else "stop")

    def kill(self, instance: Instance) -> None:
        self._set(instance, "kill")

    def destroy(self, instance: Instance) -> None:
        with self._lock:
            self._machines.pop(instance["InstanceId"], None)

    def observe(self, instance: Instance) -> str:
        with self._lock:
            target, since = self._machines.get(instance["InstanceId"], ("adopt", 0.0))
        elapsed = time.monotonic() - since
        if target == "adopt":
            # After a daemon restart the machines of the records backend are whatever the records say,
            # finishing any transition that was under way.
            return {"Pending": "Running", "Starting": "Running", "Stopping": "Stopped"}.get(
                instance["Status"], instance["Status"])
        if target == "create":
            if elapsed < PENDING_SECONDS:
                return "Pending"
            return "Starting" if elapsed < PENDING_SECONDS + STARTING_SECONDS else "Running"
        if target == "start":
            return "Starting" if elapsed < STARTING_SECONDS else "Running"
        if target == "stop":
            return "Stopping" if elapsed < STOPPING_SECONDS else "Stopped"
        return "Stopped"
