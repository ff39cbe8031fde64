"""The agent's pollers (a daemon thread that looks every few seconds) and its event log: this instance's
events with their times, on the bucket at <output_dir>/<EVENTS_DIR>/<instance id>.jsonl (see
protocol.Event for what each says), which chaos.yml and the status read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from .checkpoints import atomic_write
from .logs import LOG
from .pace import SavePace
from .protocol import CLOCK_RE, STEP_RE, Event


class Poller:
    """A daemon thread that calls `poll()` every `interval` seconds (0: never) until it returns True.

    `look_first`: the first look comes at once rather than after one interval.
    """

    name = "poller"
    look_first = True

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._warned = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def poll(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def warn_once(self, message: str, *args: object) -> None:
        """Log a problem the next looks will retry, the first time only."""
        if not self._warned:
            LOG.warning(message + "; retrying every %gs", *args, self.interval)
            self._warned = True

    def _run(self) -> None:
        if self.look_first and self.poll():
            return
        while not self._done.wait(self.interval):
            if self.poll():
                return


class EventLog(Poller):
    """This instance's events with their times, written to the bucket within `interval` seconds.

    One JSON object a line: {"time": <epoch seconds>, "event": <name>, ...}. The step and save times
    are the trainer's own (plugin/callbacks.py prints them); where the trainer cannot print them
    (ms-swift 3) the steps come from its log lines, at the time the agent reads them.
    """

    name = "event-log"
    look_first = False

    def __init__(self, path: Path, interval: float) -> None:
        super().__init__(interval)
        self.path = path
        try:  # a restarted agent on the same instance goes on with the same log
            self._lines = path.read_text().splitlines(keepends=True)
        except OSError:
            self._lines = []
        self._written = len(self._lines)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.clocked = False  # the trainer prints its clock lines
        self.pace = SavePace()  # how long a stop takes here, from the same lines

    def add(self, event: str, when: float | None = None, **fields: Any) -> None:
        line = json.dumps({"time": round(time.time() if when is None else when, 3), "event": event, **fields})
        with self._lock:
            self._lines.append(line + "\n")

    def poll(self) -> bool:
        """Write the log if it has new events (also called to flush it before the instance goes)."""
        with self._write_lock:
            with self._lock:
                if self._written == len(self._lines):
                    return False
                text, count = "".join(self._lines), len(self._lines)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Replaced whole (a rename is a copy on the bucket): an instance killed while it writes
                # leaves its last complete log, not a truncated one.
                atomic_write(self.path, text)
            except OSError as exc:
                self.warn_once("cannot write the event log %s (%s)", self.path, exc)
                return False
            self._written = count
        return False

    def stop(self) -> None:
        super().stop()
        self.poll()

    def watch(self, line: str) -> None:
        """Take the trainer's clock lines (and, without them, its step lines) from its output."""
        clock = CLOCK_RE.search(line)
        if clock:
            when, step = float(clock["time"]), int(clock["step"])
            self.add(clock["event"], when=when, step=step)
            self.pace.observe(clock["event"], step, when)
            self.clocked = True
        elif not self.clocked and (line_step := STEP_RE.search(line)):
            self.add(Event.STEP, step=int(line_step["step"]))
            self.pace.observe(Event.STEP, int(line_step["step"]), time.time())


def boot_times(output_dir: Path) -> dict[str, float]:
    """When this machine's systemd started (its boot) and when the mount that holds `output_dir` became
    active, in epoch seconds, from systemd's own monotonic timestamps: the first milestones of a resume
    (chaos.yml's breakdown). {} where systemd does not run the machine (a host, a test)."""
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return {}
    mount = output_dir
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent

    def monotonic(*args: str) -> float | None:
        try:
            shown = subprocess.run(["systemctl", "show", "--value", *args], capture_output=True, text=True,
                                   timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        return int(shown) / 1e6 if shown.isdigit() and int(shown) > 0 else None

    times: dict[str, float] = {}
    offset = time.time() - time.monotonic()
    if (booted := monotonic("-p", "UserspaceTimestampMonotonic")) is not None:
        times["booted"] = round(booted + offset, 3)
    if mount != mount.parent and (mounted := monotonic("-p", "ActiveEnterTimestampMonotonic", "--", str(mount))):
        times["mounted"] = round(mounted + offset, 3)
    return times
