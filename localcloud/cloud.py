"""The cloud: state, clock, market and instance backend, and the engine that runs background work.

Product modules (`localcloud.products.*`) register their actions and background work in
`localcloud.registry`, which this module imports them to fill; the RPC server dispatches on
(API version, action name) through it. Background work (instance lifecycle, spot reclaims, the
Auto Scaling engine) runs in `Cloud.tick`, called by the daemon's engine thread; every step of it
reads and writes the store, so a restarted daemon resumes where it stopped.

Every kind of record in the store has one owner, which the other modules go through (the kind's
name appears nowhere else; tests/localcloud/test_record_owners.py holds the rule):
  instances       instance, released_instance (InstanceId)
  network         vpc, vswitch, security_group
  scaling_groups  scaling_group, scaling_configuration, scaling_activity
  lifecycle_hooks lifecycle_hook (LifecycleHookId), lifecycle_action (LifecycleActionToken)
  identities      access_key, sts_credential (AccessKeyId), ram_role (lower(RoleName)),
                  ram_policy (lower("PolicyType:PolicyName")); credentials issues the STS ones
  images          image (ImageId; the public system images are registered at start)
  market          spot_market (zone/type), spot_price_history (zone/type/time)
  billing         ledger (InstanceId)
  custom_events   custom_event (Id)
  server          client_token (product:action:token -> the response first given)
  faults          the injected faults (a key of its own: `localcloud fault`)
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import (
    identities,
    ids,
    images,
    instances,
    products,  # noqa: F401 - fills the registry with every product's actions and tickers
    registry,
)
from .auth import Authenticator
from .backends import InstanceBackend, make_backend
from .clock import Clock
from .config import InstanceTypeSpec, Settings
from .faults import Faults
from .market import Market
from .store import Store, private_dir

log = logging.getLogger("localcloud")


class Cloud:
    def __init__(self, state_dir: Path, settings: Settings | None = None,
                 backend: InstanceBackend | None = None) -> None:
        self.state_dir = private_dir(state_dir)
        self.store = Store(self.state_dir / "state.db")
        self.settings = self._load_settings(settings)
        anchor = self.store.kv_get("clock")
        if anchor:
            self.clock = Clock(anchor["scale"], anchor["anchor_real"], anchor["anchor_virtual"])
            if anchor["scale"] != self.settings.time_scale:
                self.clock.rescale(self.settings.time_scale)
        else:
            self.clock = Clock(self.settings.time_scale)
        self.store.kv_put("clock", self.clock.state())
        self.auth = Authenticator(self.store)
        self.market = Market(self.store, self.settings, self.clock)
        self.faults = Faults(self.store, self.clock)
        self.backend = backend or make_backend(self.settings.backend, self)
        self._tick_lock = threading.Lock()
        # Set by an API call after which the engine should run now (a new desired capacity, a completed
        # lifecycle action) rather than at its next round.
        self.wakeup = threading.Event()
        # The object storage (localcloud.oss's OssService), set by the OSS endpoint when it starts.
        self.oss: Any = None
        self._bootstrap_account()
        images.ensure_system_images(self.store, self.clock.now())

    def _load_settings(self, given: Settings | None) -> Settings:
        """Settings are fixed at the first start of a state dir; later starts may change the time scale."""
        stored = self.store.kv_get("settings")
        if stored is None:
            settings = given or Settings()
        else:
            stored["instance_types"] = [InstanceTypeSpec(**t) for t in stored["instance_types"]]
            settings = Settings(**stored)
            if given is not None:
                settings.time_scale = given.time_scale
                settings.engine_interval = given.engine_interval
                if given.backend != settings.backend:
                    # Instances made by one backend mean nothing to another: the first choice stays.
                    log.warning("this state directory runs %s instances; ignoring the request for %s",
                                settings.backend, given.backend)
        self.store.kv_put("settings", asdict(settings))
        return settings

    def _bootstrap_account(self) -> None:
        with self.store.transaction():
            if self.store.kv_get("account_uid") is None:
                self.store.kv_put("account_uid", ids.account_uid())
            if self.store.kv_get("root_access_key_id") is None:
                key_id = ids.access_key_id()
                identities.ACCESS_KEY.save(self.store, {
                    "AccessKeyId": key_id, "AccessKeySecret": ids.secret(), "Status": "Active",
                })
                self.store.kv_put("root_access_key_id", key_id)

    @property
    def account_uid(self) -> str:
        return self.store.kv_get("account_uid")

    def root_credentials(self) -> tuple[str, str]:
        key_id = self.store.kv_get("root_access_key_id")
        return key_id, identities.ACCESS_KEY.find(self.store, key_id)["AccessKeySecret"]

    def tick(self) -> None:
        """One round of background work; safe to call from one thread at a time."""
        with self._tick_lock:
            instances.sync(self)
            for fn in registry.tickers():
                try:
                    fn(self)
                except Exception:
                    log.exception("background work %s failed; retrying on the next tick", fn.__name__)

    def wake(self) -> None:
        """Have the engine run its next round now."""
        self.wakeup.set()

    def close(self) -> None:
        self.store.close()
