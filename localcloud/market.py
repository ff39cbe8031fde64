"""The spot market: per zone and instance type a spot capacity and a spot price.

Capacity counts instances: a zone with capacity 2 for a type runs at most two spot instances of it
at once (instances under a reclaim notice still hold their place until they are gone).
This module owns the `spot_market` and `spot_price_history` records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import instances
from .clock import Clock
from .config import Settings
from .errors import ApiError
from .store import Store

SPOT_MARKET = "spot_market"  # keyed by zone/type
SPOT_PRICE_HISTORY = "spot_price_history"  # keyed by zone/type/time


@dataclass(frozen=True)
class Offer:
    zone: str
    instance_type: str
    capacity: int
    spot_price: float
    on_demand_price: float


class Market:
    def __init__(self, store: Store, settings: Settings, clock: Clock | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._types = {t.name: t for t in settings.instance_types}

    @property
    def zones(self) -> list[str]:
        return list(self.settings.zones)

    @property
    def instance_types(self) -> list[str]:
        return list(self._types)

    def check(self, zone: str | None, instance_type: str | None) -> None:
        if zone is not None and zone not in self.settings.zones:
            raise ApiError("InvalidZoneId.NotFound", f"The specified zone {zone} does not exist in "
                           f"{self.settings.region}. Zones: {', '.join(self.settings.zones)}.", 404)
        if instance_type is not None and instance_type not in self._types:
            raise ApiError("InvalidInstanceType.NotFound", f"The specified instance type {instance_type} does "
                           f"not exist. Types: {', '.join(self._types)}.", 404)

    def offer(self, zone: str, instance_type: str) -> Offer:
        self.check(zone, instance_type)
        spec = self._types[instance_type]
        row = self.store.get(SPOT_MARKET, f"{zone}/{instance_type}") or {}
        return Offer(zone, instance_type, int(row.get("Capacity", self.settings.default_spot_capacity)),
                     float(row.get("Price", spec.spot_price)), spec.on_demand_price)

    def set(self, zone: str, instance_type: str, capacity: int | None = None, price: float | None = None) -> Offer:
        if capacity is not None and capacity < 0:
            raise ValueError("capacity must be zero or more")
        if price is not None and price <= 0:
            raise ValueError("price must be positive")
        current = self.offer(zone, instance_type)
        with self.store.transaction():
            self.store.put(SPOT_MARKET, f"{zone}/{instance_type}", {
                "ZoneId": zone, "InstanceType": instance_type,
                "Capacity": current.capacity if capacity is None else capacity,
                "Price": current.spot_price if price is None else price,
            })
            if price is not None and price != current.spot_price:
                self._record_price(zone, instance_type, price)
        return self.offer(zone, instance_type)

    def _record_price(self, zone: str, instance_type: str, price: float) -> None:
        """Keep every spot price change for DescribeSpotPriceHistory (virtual time)."""
        at = self.clock.now() if self.clock else time.time()
        self.store.put(SPOT_PRICE_HISTORY, f"{zone}/{instance_type}/{at:.6f}", {
            "ZoneId": zone, "InstanceType": instance_type, "SpotPrice": price, "At": at,
        })

    def price_changes(self, zone: str, instance_type: str) -> list[tuple[float, float]]:
        """(time, price) of every recorded spot price change of a zone and type, oldest first."""
        return sorted((h["At"], h["SpotPrice"]) for h in self.store.list(
            SPOT_PRICE_HISTORY, lambda h: h["ZoneId"] == zone and h["InstanceType"] == instance_type))

    def spot_in_use(self, zone: str, instance_type: str) -> int:
        """How many spot instances of a zone and type hold capacity."""
        return len(instances.live_spot(self.store, zone, instance_type))

    def spot_free(self, zone: str, instance_type: str) -> int:
        return max(0, self.offer(zone, instance_type).capacity - self.spot_in_use(zone, instance_type))
