"""Injected faults: the failures a real account meets now and then, made to happen on purpose.

A fault makes one of localcloud's endpoints answer a share of its requests as Alibaba Cloud does when
it is overloaded, or slowly:

  api  the RPC endpoint (ECS, ESS, RAM, VPC, STS, CMS): `Throttling.User` (400, "Request was denied due
       to user flow control.", the answer to a user's flow control) or `ServiceUnavailable` (503);
  oss  the OSS endpoint: `ServiceUnavailable` (503, "Thread pool is almost full, please retry later"),
       `QpsLimitExceeded` (429), `InternalError` (500), or S3's `SlowDown` (503), which s3fs knows by
       name;

at a rate (each matching request fails with that probability, drawn from the fault's own seeded
random sequence), with an added latency, for a number of virtual seconds (or until it is cleared), on
the requests whose target matches a glob: `product:Action` for api (`ess:*`, `ecs:RunInstances`),
`bucket/key` for oss (`*/output/checkpoint-*`), and optionally their HTTP methods. The failure is the
endpoint's own answer, in the product's error shape: the client sees what it would see from Alibaba,
nothing it could tell apart.

A network cut (net) cuts one instance off for a number of virtual seconds: its network's front door
holds every connection from it (metadata, OSS, RPC; new ones and those already open) without a byte in
either direction, as a dropped link does: a client that waits less than the cut times out, one that waits
longer is answered once the link is back.

A kill fault (oss, meta) kills the instance that sent a matching request, then drops the request
unanswered: the machine dies in the middle of, say, a checkpoint upload (oss, `--method PUT --match
'*/output/checkpoint-*'`), of its mount (oss with `--new`: a new instance's first OSS request is its
mount's) or of its boot (meta with `--new`: a new instance's first request to the metadata service, for
its user-data or the mount's RAM credentials, comes while systemd is still starting it). `--new` strikes
only the instances launched after the fault was added, so that the one training is left alone. Requests
that come from no instance (the host) are left alone. It strikes `--limit` times (default once).

The faults live in the state store and survive a restart of the daemon; this module owns the record.
"""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from . import ids
from .clock import iso_seconds
from .errors import ApiError

if TYPE_CHECKING:
    from .clock import Clock
    from .store import Store

FAULTS = "faults"  # the store's key: the list of active faults
# The errors each endpoint can be made to answer: {target: {code: (status, message)}}; the first is the default.
ERRORS = {
    "api": {
        "Throttling.User": (400, "Request was denied due to user flow control."),
        "ServiceUnavailable": (503, "The request has failed due to a temporary failure of the server."),
    },
    "oss": {
        "ServiceUnavailable": (503, "Thread pool is almost full, please retry later"),
        "QpsLimitExceeded": (429, "Please reduce your request rate."),
        "InternalError": (500, "We encountered an internal error. Please try again."),
        "SlowDown": (503, "Please reduce your request rate."),
    },
}
# Endpoints a fault can only kill through: meta, the metadata service (its paths: `/latest/api/token`).
KILL_ONLY = ("meta",)
TARGETS = (*ERRORS, *KILL_ONLY, "net")


@dataclass
class Fault:
    id: str
    target: str
    rate: float
    code: str | None
    latency: float  # real seconds added before the answer
    match: str
    until: float | None  # virtual epoch seconds; None: until cleared
    seed: int
    action: str = "error"  # or "kill" (oss): kill the instance that sent the request
    methods: list[str] | None = None  # HTTP methods it applies to; None: every method
    limit: int | None = None  # strikes at most this often; None: no limit
    injected: int = 0  # requests answered with the error (or whose instance was killed)
    delayed: int = 0  # requests slowed down
    # What a kill fault killed: [{instance_id, time (epoch seconds, wall clock), request: "METHOD bucket/key"}].
    killed: list[dict[str, Any]] = field(default_factory=list)
    instance: str | None = None  # net: the instance cut off
    address: str | None = None  # net: its private address
    new: bool = False  # kill: only instances launched after the fault was added
    added: float = 0.0  # virtual epoch seconds
    _random: random.Random = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    def spent(self) -> bool:
        return self.limit is not None and self.injected >= self.limit

    def view(self) -> dict[str, Any]:
        status = ERRORS[self.target][self.code][0] if self.code else None  # kills and cuts have no code
        return {**self.record(), "status": status, "clock": "virtual",
                "ends": iso_seconds(self.until) if self.until is not None else None}


def check(target: str, rate: float, code: str | None, latency: float, duration: float | None,
          kill: bool = False, limit: int | None = None, new: bool = False) -> str | None:
    """What is wrong with a fault's settings (None: nothing), in words that say what is allowed."""
    if target not in TARGETS:
        return f"target {target!r} is not one of {', '.join(TARGETS)}"
    if target == "net":
        if duration is None or duration <= 0:
            return "a network cut needs --for: the virtual seconds it lasts"
        if rate or code or latency or kill:
            return "a network cut takes an instance and --for, no rate, code, latency or kill"
        return None
    if limit is not None and limit < 1:
        return f"limit {limit} is not a positive number of strikes"
    if new and not kill:
        return "--new says which instances a kill strikes: give it with --kill"
    if target in KILL_ONLY and not kill:
        return f"a {target} fault kills the instance that sent a matching request: give --kill"
    if kill:
        if target not in ("oss", *KILL_ONLY):
            return "only oss and meta faults kill (the instance that sent a matching request)"
        if code is not None:
            return "a kill fault answers nothing: give --kill or --code, not both"
    if not 0 <= rate <= 1:
        return f"rate {rate} is not between 0 and 1 (the share of matching requests that fail)"
    if code is not None and code not in ERRORS[target]:
        return f"code {code!r} is not one {target} answers here: {', '.join(ERRORS[target])}"
    if latency < 0 or latency > 600:
        return f"latency {latency} s is not between 0 and 600 real seconds"
    if duration is not None and duration <= 0:
        return f"duration {duration} is not a positive number of virtual seconds"
    if rate == 0 and latency == 0 and not kill:
        return "the fault does nothing: give a rate above 0, a latency, or both"
    return None


class Faults:
    """The active faults, kept in memory for the endpoints (looked up on every request) and in the store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self._lock = threading.Lock()
        self._faults = [Fault(**{k: v for k, v in record.items() if k in Fault.__dataclass_fields__})
                        for record in store.kv_get(FAULTS) or []]

    def _save(self) -> None:
        self.store.kv_put(FAULTS, [fault.record() for fault in self._faults])

    def _live(self, now: float) -> list[Fault]:
        return [fault for fault in self._faults if fault.active(now)]

    def add(self, target: str, rate: float = 0.0, code: str | None = None, latency: float = 0.0,
            match: str = "*", duration: float | None = None, seed: int | None = None, kill: bool = False,
            methods: list[str] | None = None, limit: int | None = None, instance: str | None = None,
            address: str | None = None, new: bool = False) -> dict[str, Any]:
        if problem := check(target, rate, code, latency, duration, kill, limit, new):
            raise ValueError(problem)
        if (target == "net") != bool(instance and address):
            raise ValueError("a network cut names the instance to cut off (and only a cut does)")
        now = self.clock.now()
        if kill:
            rate, limit = rate or 1.0, limit or 1
        fault = Fault(id=ids.new_id("fault", length=10), target=target, rate=rate,
                      code=(code or next(iter(ERRORS[target]))) if rate > 0 and not kill else None,
                      latency=latency, match=match or "*", until=None if duration is None else now + duration,
                      seed=random.randrange(2 ** 31) if seed is None else seed, action="kill" if kill else "error",
                      methods=[m.upper() for m in methods] if methods else None, limit=limit,
                      instance=instance, address=address, new=new, added=now)
        with self._lock:
            self._faults = [*self._live(now), fault]
            self._save()
        return fault.view()

    def clear(self, fault_id: str | None = None) -> list[dict[str, Any]]:
        """Remove one fault, or all of them; what was removed (with what each injected)."""
        with self._lock:
            gone = [f for f in self._faults if fault_id in (None, f.id)]
            if fault_id is not None and not gone:
                raise ValueError(f"no fault {fault_id}: `localcloud fault list` shows the active ones")
            self._faults = [f for f in self._faults if f not in gone]
            self._save()
        return [fault.view() for fault in gone]

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            self._save()  # the counts, as of now
            now = self.clock.now()
            return [{**fault.view(), "active": fault.active(now)} for fault in self._faults]

    def cut(self, address: str, count: bool = False) -> bool:
        """Whether the instance at `address` is cut off now (`count`: one more connection held)."""
        if not self._faults:
            return False
        with self._lock:
            now = self.clock.now()
            fault = next((f for f in self._live(now) if f.target == "net" and f.address == address), None)
            if fault is not None and count:
                fault.injected += 1
        return fault is not None

    @staticmethod
    def _strikes(fault: Fault, origin: dict[str, Any] | None) -> bool:
        """Whether a kill fault may strike the instance `origin` (None: the request came from the host)."""
        return origin is not None and (not fault.new or origin.get("CreatedAt", 0) >= fault.added)

    def kills(self, target: str) -> bool:
        """Whether a kill fault waits on `target` (the endpoint then looks up who sent each request)."""
        return any(f.action == "kill" and f.target == target and not f.spent() for f in self._faults)

    def apply(self, target: str, name: str, method: str = "", origin: dict[str, Any] | None = None) -> str | None:
        """Called by an endpoint for each request (`name`: `product:Action`, `bucket/key` or a metadata path;
        `origin`: the record of the instance that sent it, if one did and a kill fault waits): wait the added
        latency of the faults that match, then raise the error of the first that strikes, or return the id of
        the instance a kill fault strikes (the caller kills it)."""
        if not self._faults:
            return None
        with self._lock:
            matching = [f for f in self._live(self.clock.now())
                        if f.target == target and fnmatch.fnmatchcase(name, f.match) and not f.spent()
                        and (f.methods is None or method.upper() in f.methods)
                        and (f.action != "kill" or self._strikes(f, origin))]
            delay = sum(fault.latency for fault in matching)
            struck = next((f for f in matching if f.rate > 0 and f._random.random() < f.rate), None)
            for fault in matching:
                fault.delayed += fault.latency > 0
            if struck is not None:
                struck.injected += 1
                if struck.action == "kill":
                    struck.killed.append({"instance_id": origin["InstanceId"], "time": round(time.time(), 3),
                                          "request": f"{method.upper()} {name}"})
            if struck is not None and struck.spent():
                self._save()
        if delay:
            time.sleep(delay)
        if struck is None:
            return None
        if struck.action == "kill":
            return origin["InstanceId"]
        status, message = ERRORS[target][struck.code]
        raise ApiError(struck.code, message, status)
