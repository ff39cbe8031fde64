"""Stopping the trainer: the stop latch (`GracefulStop`), the stop's way to the trainer (`TrainerStop`:
ms-swift's stop file, or a kill), the handover to a successor that has loaded (`Handover`, through which
every stop is asked for), and what asks for one: a signal, a spot reclaim notice, the group's scale-in, a
successor that has loaded beside the lease (`stop_requests`)."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .cloud import CloudError, Metadata
from .config import Config
from .events import EventLog, Poller
from .group import ScaleIn, scaling_group_of
from .instance import Instance
from .logs import LOG
from .pace import Deadline, termination_deadline
from .protocol import SWIFT_STOP_FILE, Event

# At a handover, each side's look (a GET) is on the critical path twice: the holder looks for a loaded
# successor, which then looks for the lease given back; both while training stands still or waits.
HANDOVER_POLL = 0.2
NOTICE_PATH = "instance/spot/termination-time"
SCALE_IN_MARK = "Removing:Wait"
# After a handover that a successor asked for, how long the agent still looks for a scale-in of this instance
# to complete (seconds): the group may hold it at a SCALE_IN hook once the successor is in service.
SCALE_IN_LINGER = 60.0
# RecordLifecycleActionHeartbeat's heartbeatTimeout: 30 to 21600 seconds (ESS 2022-02-22).
HEARTBEAT_RANGE = (30, 21600)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (`swift` runs its trainer as a child)."""
    def children(parent: int) -> list[int]:
        found = []
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                found += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
        return found

    doomed, pending = [], [pid]
    while pending:
        current = pending.pop()
        doomed.append(current)
        pending += children(current)
    for target in doomed:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            continue


class GracefulStop:
    """The stop latch: the first request wins and keeps its reason; whoever trains or waits reads it, or
    waits on it."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.requested = threading.Event()
        self._lock = threading.Lock()

    def request(self, reason: str) -> bool:
        """Latch the stop with `reason`; False when it was latched already (the first reason stays)."""
        with self._lock:
            if self.reason is not None:
                return False
            self.reason = reason
            self.requested.set()
        return True

    def replace(self, reason: str) -> None:
        """Latch the stop with `reason`, whatever was asked before (an abort overrides a graceful stop)."""
        with self._lock:
            self.reason = reason
            self.requested.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the stop, at most `timeout` seconds; whether it has been asked for."""
        return self.requested.wait(timeout)


class TrainerStop:
    """How a stop reaches the trainer: ms-swift 4's stop file, which its graceful_exit callback reads at the
    end of a step (a signal would reach only the `swift` launcher, not its trainer child); a kill where
    ms-swift cannot save on request (3.x)."""

    def __init__(self, stop: GracefulStop, stop_file: Path = Path(SWIFT_STOP_FILE), graceful: bool = True) -> None:
        self.stop, self.stop_file = stop, stop_file
        self.graceful = graceful  # False where ms-swift cannot save on request (3.x): the trainer is killed
        self.process: subprocess.Popen[str] | None = None

    def clear(self) -> None:
        """A stop file left by an earlier run would stop the next trainer at its first step."""
        self.stop_file.unlink(missing_ok=True)

    def attach(self, process: subprocess.Popen[str]) -> None:
        """The trainer to stop; a stop that came while it was being started reaches it now."""
        self.process = process
        if self.stop.requested.is_set():
            self.signal()

    def signal(self) -> None:
        """The stop file for ms-swift 4 (it may start after this); a kill where ms-swift cannot save."""
        if not self.graceful:
            self.kill()
            return
        try:
            self.stop_file.touch()
        except OSError as exc:
            LOG.error("cannot write %s (%s): swift will not stop by itself", self.stop_file, exc)

    def kill(self) -> None:
        """Kill the trainer and its children at once, without a save."""
        if self.process is not None:
            kill_tree(self.process.pid)


class Handover:
    """Asks the running trainer, once, to save a checkpoint at the end of its step and stop (or, on a lost
    lease, kills it), and logs the stop in the event log.

    A stop that has time (a reclaim notice, a scale-in) may first wait for a successor: while this
    instance trains with the lease, `successor` names an instance whose trainer has loaded and waits
    for it; training goes on until there is one, for at most `handover_wait` seconds, and never past the
    moment the stop's own save must begin to be over before the `Deadline` (the pace of this instance's
    recent steps, saves and manifests, with a margin): then it hands over without one.
    """

    def __init__(self, stop: GracefulStop, trainer: TrainerStop, events: EventLog, handover_wait: float = 0.0) -> None:
        self.stop, self.trainer, self.events = stop, trainer, events
        self.handover_wait = handover_wait
        self.successor: Callable[[], str | None] | None = None
        self._waiting = False
        self._deadlines: list[Deadline] = []
        self._lock = threading.Lock()

    def request(self, reason: str, after_handover: bool = False, deadline: Deadline | None = None) -> None:
        """Stop now; with `after_handover`, once a successor has loaded (or the wait is over, or the
        `deadline` leaves only the time the stop takes)."""
        with self._lock:
            successor = self.successor
            if (self.stop.reason is None and after_handover and successor is not None
                    and self.handover_wait > 0):
                if not self._waiting:
                    self._waiting = True
                    threading.Thread(target=self._await_successor, args=(reason, successor, deadline),
                                     name="handover", daemon=True).start()
                elif deadline is not None:
                    self._deadlines.append(deadline)  # a second reason to stop, perhaps with less time
                return
            first = self.stop.request(reason)
        if not first:
            LOG.info("%s: already stopping (%s)", reason, self.stop.reason)
            return
        self.events.add(Event.STOP, reason=reason)
        if self.trainer.graceful:
            LOG.info("%s: asking swift to save a checkpoint at the end of this step and stop", reason)
        else:
            LOG.warning("%s: this ms-swift cannot save on request; stopping it loses the steps since the last "
                        "checkpoint", reason)
        self.trainer.signal()

    def _await_successor(self, reason: str, successor: Callable[[], str | None], deadline: Deadline | None) -> None:
        if deadline is not None:
            self._deadlines.append(deadline)
        LOG.info("%s: training on until a successor has loaded (at most %gs)", reason, self.handover_wait)
        waited_until = time.monotonic() + self.handover_wait
        warned = False
        while not self.stop.requested.is_set():
            if self.successor is None:  # training ended meanwhile
                with self._lock:
                    self._waiting = False
                return
            try:
                found = successor()
            except (CloudError, OSError) as exc:
                found = None
                if not warned:
                    LOG.warning("cannot read whether a successor waits (%s); retrying", exc)
                    warned = True
            if found:
                LOG.info("%s has loaded and waits for the training lease: handing over", found)
                break
            if time.monotonic() >= waited_until:
                LOG.warning("no successor loaded within %gs: handing over now", self.handover_wait)
                break
            if self._out_of_time(waited_until - time.monotonic()):
                break
            self.stop.wait(HANDOVER_POLL)
        with self._lock:
            self._waiting = False
        self.request(reason)

    def _out_of_time(self, wait_left: float) -> bool:
        """Whether the stop must be asked for now to be over before the nearest deadline: the time left is no
        more than a stop takes. Where the deadline can be moved (a hook's heartbeat), it is asked for the rest
        of the wait and the stop first."""
        needed = self.events.pace.stop_seconds()
        for deadline in sorted(self._deadlines, key=lambda item: item.ends_at):
            left = deadline.ends_at - time.time()
            if left > needed:
                continue
            if deadline.extend is not None:
                extend, deadline.extend = deadline.extend, None  # asked once
                moved = extend(wait_left + needed)
                if moved is not None and moved - time.time() > needed:
                    deadline.ends_at = moved
                    continue
            LOG.warning("%.0fs left until %s and a stop takes about %.0fs here (%s): handing over now, without a "
                        "successor", max(left, 0.0), deadline.what, needed, self.events.pace.describe())
            return True
        return False

    def abort(self, reason: str) -> None:
        """Stop the trainer at once, without a save: another instance trains into this output now."""
        self.stop.replace(reason)
        LOG.error("%s: stopping swift without a save", reason)
        self.trainer.kill()


class NoticeWatcher(Poller):
    """Polls the metadata service for a spot reclaim notice (404: no notice)."""

    name = "spot-notice"

    def __init__(self, metadata: Metadata, interval: float, handover: Handover) -> None:
        super().__init__(interval)
        self.metadata = metadata
        self.handover = handover

    def poll(self) -> bool:
        """Check for a notice; on one, ask for the graceful stop. True when one was seen."""
        try:
            when = self.metadata.get(NOTICE_PATH)
        except (OSError, ValueError) as exc:  # urllib's errors are OSErrors
            self.warn_once("cannot read spot notices at %s (%s)", self.metadata.base_url, exc)
            return False
        if when:
            self.handover.request(f"spot reclaim notice (the instance terminates at {when})", after_handover=True,
                                  deadline=termination_deadline(when))
        return bool(when)


class ScaleInWatcher(Poller):
    """Watches for the group's scale-in of this instance (Removing:Wait at a SCALE_IN lifecycle hook).

    On it, a graceful stop; once the agent has handed over, `complete()` lets the removal go on.
    """

    name = "scale-in"

    def __init__(self, instance: Instance | None, interval: float, handover: Handover) -> None:
        super().__init__(interval if instance is not None else 0)
        self.instance, self.handover = instance, handover
        self.scale_in: ScaleIn | None = None
        self.seen = False

    def poll(self) -> bool:
        """True once there is nothing more to watch: the group holds this instance in Removing:Wait (and
        the stop is asked for), or the instance is in no group."""
        instance = self.instance
        try:
            if self.scale_in is None:
                group_id = scaling_group_of(instance.ecs, instance.region, instance.instance_id)
                if group_id is None:
                    LOG.info("this instance is in no scaling group: no scale-in to watch")
                    return True
                self.scale_in = ScaleIn(instance.ess, instance.region, group_id, instance.instance_id)
            if not self.scale_in.waiting():
                return False
        except (CloudError, OSError, ValueError) as exc:
            self.warn_once("cannot read this instance's scaling state (%s)", exc)
            return False
        self.seen = True
        # The hold began at most one look ago.
        self.handover.request(f"scale-in ({SCALE_IN_MARK} in scaling group {self.scale_in.group_id})",
                              after_handover=True, deadline=self._deadline(time.time() - self.interval))
        return True

    def _deadline(self, began: float) -> Deadline | None:
        """When the group's hook stops holding this instance (its HeartbeatTimeout from the hold's start)."""
        try:
            timeout = self.scale_in.hook_timeout()
        except (CloudError, OSError, ValueError) as exc:
            LOG.warning("cannot read the scale-in hook's timeout (%s): the handover waits at most "
                        "train_service_handover_wait", exc)
            return None
        if timeout is None:
            return None
        return Deadline(began + timeout, f"the scale-in hook's timeout ({timeout:g}s)", extend=self._extend)

    def _extend(self, seconds: float) -> float | None:
        """Ask the group to hold this instance `seconds` more from now; the new end, or None where it will not."""
        wanted = min(max(math.ceil(seconds), HEARTBEAT_RANGE[0]), HEARTBEAT_RANGE[1])
        try:
            if not self.scale_in.heartbeat(wanted):
                return None
        except (CloudError, OSError, ValueError) as exc:
            LOG.warning("the group holds this instance no longer (RecordLifecycleActionHeartbeat: %s)", exc)
            return None
        LOG.info("asked the group to hold this instance %ds more (RecordLifecycleActionHeartbeat)", wanted)
        return time.time() + wanted

    def linger(self, seconds: float) -> None:
        """Wait at most `seconds` for the scale-in (a replacement's hook may come once the successor is in
        service), unless the watch is over."""
        deadline = time.monotonic() + seconds
        while not self.seen and self.interval > 0 and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(min(1.0, self.interval))

    def complete(self) -> None:
        """After the handover: complete this instance's lifecycle actions, so the group removes it now."""
        if not self.seen or self.scale_in is None:
            return
        try:
            count = self.scale_in.complete()
        except (CloudError, OSError) as exc:
            LOG.warning("completing the lifecycle action failed (%s); the hook's timeout ends the wait", exc)
            return
        LOG.info("%d lifecycle action(s) completed (CONTINUE): the group removes this instance now", count)


class SuccessorWatcher(Poller):
    """While this instance trains with the lease, a successor that has loaded and waits beside it is reason
    enough to save and hand over, with or without a notice or a scale-in.

    A successor is launched where the group replaces this instance. ESS documents lifecycle hooks for the
    group's scale-ins; whether the replacement of a pay-as-you-go instance by spot (SpotAutoReplaceOnDemand)
    or a reclaim passes through a SCALE_IN hook it does not say. Without this, a replacement that passes
    none would release this instance while it trains, and the steps since its last save would be lost.
    """

    name = "successor"
    look_first = False

    def __init__(self, interval: float, handover: Handover) -> None:
        super().__init__(interval)
        self.handover = handover
        self.seen: str | None = None

    def poll(self) -> bool:
        successor = self.handover.successor
        if successor is None:  # not training with the lease (yet, or any more)
            return False
        try:
            found = successor()
        except (CloudError, OSError) as exc:
            self.warn_once("cannot read whether a successor waits (%s)", exc)
            return False
        if not found:
            return False
        self.seen = found
        self.handover.request(f"{found} has loaded and waits beside the lease (the group replaces this instance)",
                              after_handover=True)
        return True


@contextlib.contextmanager
def stop_requests(config: Config, metadata: Metadata, instance: Instance | None,
                  handover: Handover) -> Iterator[None]:
    """While the agent waits for the lease or trains: SIGTERM, SIGINT, a spot notice, the group's scale-in and
    a successor that has loaded ask for a stop. A scale-in's lifecycle action is completed once the agent is
    done (it has handed over); after a handover a successor asked for, a scale-in that comes within
    SCALE_IN_LINGER seconds is completed too."""
    def on_signal(signum: int, _frame: Any) -> None:
        handover.request(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    notices = NoticeWatcher(metadata, config.notice_poll_interval, handover)
    scale_in = ScaleInWatcher(instance, config.scale_in_poll_interval, handover)
    successors = SuccessorWatcher(config.scale_in_poll_interval if instance is not None else 0, handover)
    for watcher in (notices, scale_in, successors):
        watcher.start()
    try:
        yield
    finally:
        notices.stop()
        successors.stop()
        if successors.seen and handover.stop.requested.is_set():
            scale_in.linger(SCALE_IN_LINGER)
        scale_in.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if scale_in.seen:  # the handover's events on the bucket before the group releases the instance
            handover.events.poll()
        scale_in.complete()
