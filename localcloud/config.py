"""Where a localcloud keeps its state, and the settings it starts with."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import DEFAULT_REGION

SEED_INSTANCE_TYPE = "ecs.gn7i-c8g1.2xlarge"
# The seed's prices (RMB per hour) for its instance type.
SEED_ON_DEMAND_PRICE = 10.0
SEED_SPOT_PRICE = 3.5


def default_state_dir() -> Path:
    """`$LOCALCLOUD_HOME`, else `.localcloud/` in the current directory."""
    return Path(os.environ.get("LOCALCLOUD_HOME") or Path.cwd() / ".localcloud").resolve()


@dataclass
class InstanceTypeSpec:
    name: str
    cpu: int
    memory_gib: float
    gpu: int
    on_demand_price: float
    spot_price: float


@dataclass
class Settings:
    region: str = DEFAULT_REGION
    zones: list[str] = field(default_factory=lambda: [f"{DEFAULT_REGION}-{z}" for z in ("h", "i", "j", "k")])
    instance_types: list[InstanceTypeSpec] = field(default_factory=lambda: [
        InstanceTypeSpec(SEED_INSTANCE_TYPE, 8, 30, 1, SEED_ON_DEMAND_PRICE, SEED_SPOT_PRICE),
        InstanceTypeSpec("ecs.gn7i-c16g1.4xlarge", 16, 60, 1, 14.0, 4.9),
        InstanceTypeSpec("ecs.g7.large", 2, 8, 0, 0.8, 0.16),
    ])
    # Spot capacity per zone and type when nothing else was set.
    default_spot_capacity: int = 10
    # Virtual seconds per real second.
    time_scale: float = 1.0
    # The spot reclaim notice, in virtual seconds (ECS gives about 5 minutes).
    reclaim_notice_seconds: float = 300.0
    # How often the Auto Scaling engine reconciles, in real seconds.
    engine_interval: float = 0.5
    backend: str = "records"
