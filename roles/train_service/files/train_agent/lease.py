"""One trainer per output directory: the lease object on the bucket (`Lease`), and how the agent waits for it,
keeps it while it trains and hands it over.

A lease object on the bucket names the instance that may train and a heartbeat. It is created with
`x-oss-forbid-overwrite: true`, so of two instances that try at once one gets it and the other OSS's 409
`FileAlreadyExists`; it is taken over when its holder no longer exists (DescribeInstances) or its heartbeat
is older than the expiry, judged by the bucket's clock (the object's Last-Modified against the answer's
Date), so that an instance whose clock runs ahead does not see a live holder as stale; its holder renews it
and deletes it when it hands over. A successor whose trainer has loaded announces itself beside it
(`<key>.next`), and a holder on its way out hands over then.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .cloud import CloudError, OssClient, instance_exists
from .config import Config
from .events import Poller
from .instance import Instance
from .logs import LOG
from .protocol import LEASE_MARK, LEASE_WAIT_MARK
from .stopping import HANDOVER_POLL, GracefulStop, Handover

HEARTBEAT_AGE = re.compile(r" \(heartbeat \d+s ago\)")  # in Lease.try_acquire's reasons
# How often a waiting agent looks at the lease (a GET).
LEASE_POLL = 1.0


@dataclass
class LeaseState:
    """What the lease object says; `age`, how long ago it was written by the bucket's clock (None where the
    bucket did not say: then the heartbeat, written with its holder's clock, is compared with this one's)."""

    holder: str
    heartbeat: float
    acquired: float
    age: float | None = None

    def heartbeat_age(self) -> float:
        return self.age if self.age is not None else time.time() - self.heartbeat

    @classmethod
    def parse(cls, body: bytes, age: float | None = None) -> LeaseState | None:
        try:
            raw = json.loads(body)
            return cls(str(raw["holder"]), float(raw["heartbeat"]), float(raw["acquired"]), age)
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: treated as expired

    def dump(self) -> bytes:
        return json.dumps({"holder": self.holder, "heartbeat": self.heartbeat, "acquired": self.acquired,
                           "host": socket.gethostname()}).encode()


class Lease:
    """One trainer per output directory (see the module's docstring)."""

    def __init__(self, oss: OssClient, key: str, holder: str, expiry: float,
                 holder_exists: Callable[[str], bool]) -> None:
        self.oss, self.key, self.holder, self.expiry = oss, key, holder, expiry
        self.holder_exists = holder_exists
        self.acquired_at: float | None = None

    def _create(self) -> bool:
        now = time.time()
        try:
            self.oss.put(self.key, LeaseState(self.holder, now, now).dump(), forbid_overwrite=True)
        except CloudError as exc:
            if exc.status == 409 and exc.code == "FileAlreadyExists":
                return False
            raise
        self.acquired_at = now
        return True

    def why_free(self, state: LeaseState | None) -> str | None:
        """Why a lease held by someone else may be taken over, or None while its holder may train."""
        if state is None:
            return "the lease object is unreadable"
        age = state.heartbeat_age()
        if age > self.expiry:
            return f"its heartbeat is {age:.0f}s old (expiry {self.expiry:g}s)"
        try:
            if not self.holder_exists(state.holder):
                return f"{state.holder} no longer exists"
        except (CloudError, OSError, ValueError) as exc:
            LOG.warning("cannot tell whether %s still exists (%s); waiting for its heartbeat to expire",
                        state.holder, exc)
        return None

    def try_acquire(self) -> tuple[bool, str]:
        """(True, how) when this instance now holds the lease, else (False, who holds it and why it waits)."""
        if self._create():
            return True, "created the lease"
        body, age = self.oss.get_aged(self.key)
        if body is None:
            return (True, "created the lease") if self._create() else (False, "another instance just took the lease")
        state = LeaseState.parse(body, age)
        if state is not None and state.holder == self.holder:
            self.acquired_at = state.acquired
            return (True, "this instance already held the lease") if self.renew() else (False, "the lease moved")
        reason = self.why_free(state)
        if reason is None:
            holder, age = (state.holder, state.heartbeat_age()) if state else ("?", 0.0)
            return False, f"{holder} holds the lease (heartbeat {age:.0f}s ago)"
        # Take over: delete the stale object only if it is still the one we judged, then race to create.
        if self.oss.get(self.key) != body:
            return False, "the lease changed while it was being taken over"
        self.oss.delete(self.key)
        if self._create():
            return True, f"took the lease over from {state.holder if state else '?'}: {reason}"
        return False, "another instance took the lease over first"

    def state(self) -> LeaseState | None:
        """What the lease object says now (None: there is none, or it is unreadable)."""
        return self._read(self.key)

    def _read(self, key: str) -> LeaseState | None:
        body, age = self.oss.get_aged(key)
        return LeaseState.parse(body, age) if body is not None else None

    def renew(self) -> bool:
        """Refresh the heartbeat; False when another instance holds the lease now."""
        state = self.state()
        if state is None or state.holder != self.holder:
            return False
        state.heartbeat = time.time()
        self.oss.put(self.key, state.dump())
        return True

    def holder_now(self) -> str | None:
        state = self.state()
        return state.holder if state else None

    def release(self) -> None:
        """Give the lease back (only if this instance still holds it)."""
        if self.holder_now() == self.holder:
            self.oss.delete(self.key)
        self.acquired_at = None

    # A warm successor: an instance whose trainer has loaded and waits for the lease says so in
    # `<key>.next` (and renews it while it waits), so that the holder, on its way out, trains on
    # until then and hands over at once.

    @property
    def successor_key(self) -> str:
        return self.key + ".next"

    def announce(self) -> None:
        """Say that this instance has loaded and waits for the lease."""
        now = time.time()
        self.oss.put(self.successor_key, LeaseState(self.holder, now, now).dump())

    def successor(self) -> str | None:
        """The instance other than this one that has loaded and waits for the lease, if it said so
        within the expiry."""
        state = self._read(self.successor_key)
        if state is None or state.holder == self.holder or state.heartbeat_age() > self.expiry:
            return None
        return state.holder

    def withdraw(self) -> None:
        """Take back this instance's announcement (it holds the lease now, or waits no more)."""
        state = self._read(self.successor_key)
        if state is not None and state.holder == self.holder:
            self.oss.delete(self.successor_key)


def make_lease(config: Config, instance: Instance | None) -> Lease | None:
    """The lease of this instance on the output directory; None when none is configured."""
    if instance is None:
        return None
    oss = OssClient(config.oss_endpoint, config.lease_bucket, instance.credentials, instance.region)
    return Lease(oss, config.lease_key, instance.instance_id, config.lease_expiry,
                 lambda holder: instance_exists(instance.ecs, instance.region, holder))


def hold_lease(lease: Lease, stop: GracefulStop, poll: float, alive: Callable[[], bool] = lambda: True,
               loaded: threading.Event | None = None, announce_every: float = 10.0) -> bool:
    """Wait until this instance holds the lease, saying who holds it meanwhile; False when stopped first
    (or when `alive` says the trainer that waits with it has died). Once `loaded` is set (the trainer
    waits, loaded), the instance announces itself as the successor, again every `announce_every` s; the
    announcement is taken back when the wait ends without the lease (with it, the caller takes it back
    once the trainer has its go)."""
    said, announced, held = None, None, False
    try:
        while not stop.requested.is_set() and alive():
            try:
                held, why = lease.try_acquire()
            except (CloudError, OSError) as exc:
                held, why = False, f"the lease object cannot be read or written ({exc})"
            if held:
                LOG.info("%s (%s): %s", LEASE_MARK, lease.holder, why)
                return True
            holder_said = HEARTBEAT_AGE.sub("", why)  # once per holder, not at each tick of its heartbeat's age
            if holder_said != said:
                LOG.info("%s: %s", LEASE_WAIT_MARK, why)
                said = holder_said
            if loaded is not None and loaded.is_set() and (
                    announced is None or time.monotonic() - announced >= announce_every):
                try:
                    lease.announce()
                    if announced is None:
                        LOG.info("loaded: told the lease holder that this instance waits to take over")
                    announced = time.monotonic()
                except (CloudError, OSError) as exc:
                    LOG.warning("cannot announce this instance as the successor (%s); retrying", exc)
            stop.wait(HANDOVER_POLL if announced is not None else poll)
        return False
    finally:
        if announced is not None and not held:
            with contextlib.suppress(CloudError, OSError):
                lease.withdraw()


def give_back(lease: Lease | None) -> None:
    """Hand the lease over (after a save that the next trainer resumes from, or at the end)."""
    if lease is None:
        return
    try:
        lease.release()
    except (CloudError, OSError) as exc:
        LOG.warning("giving the training lease back failed (%s); it expires in %gs", exc, lease.expiry)
        return
    LOG.info("training lease given back")


class LeaseKeeper(Poller):
    """Renews the lease while swift trains; stops swift at once when the lease is gone."""

    name = "lease"
    look_first = False  # just acquired

    def __init__(self, lease: Lease, interval: float, handover: Handover) -> None:
        super().__init__(interval)
        self.lease, self.handover = lease, handover
        self.lost = False
        self._renewed = time.time()

    def poll(self) -> bool:
        """Renew; True (and the trainer stopped) once the lease is lost."""
        try:
            if self.lease.renew():
                self._renewed = time.time()
                return False
            reason = f"lost the training lease ({self.lease.holder_now() or 'nobody'} holds it now)"
        except (CloudError, OSError) as exc:
            if time.time() - self._renewed < self.lease.expiry / 2:
                LOG.warning("renewing the training lease failed (%s); retrying", exc)
                return False
            reason = f"the training lease could not be renewed for {time.time() - self._renewed:.0f}s ({exc})"
        self.lost = True
        self.handover.abort(reason)
        return True
