"""The records of Auto Scaling: scaling groups, their scaling configurations and their activities.

This module owns the `scaling_group`, `scaling_configuration` and `scaling_activity` records: the
ESS API, the engine (`scaling`) and the other products read and write them through it.
"""

from __future__ import annotations

from typing import Any

from . import lifecycle_hooks
from .store import Kind, Store

Doc = dict[str, Any]

SCALING_GROUP = Kind("scaling_group", "ScalingGroupId")
SCALING_CONFIGURATION = Kind("scaling_configuration", "ScalingConfigurationId")
SCALING_ACTIVITY = Kind("scaling_activity", "ScalingActivityId")


def in_vswitch(store: Store, vswitch_id: str) -> list[Doc]:
    """The scaling groups that launch into a vSwitch."""
    return SCALING_GROUP.all(store, lambda g: vswitch_id in (g.get("VSwitchIds") or []))


def configurations_of(store: Store, group_id: str) -> list[Doc]:
    """The scaling configurations of a group."""
    return SCALING_CONFIGURATION.all(store, lambda c: c["ScalingGroupId"] == group_id)


def configurations_using_image(store: Store, image_id: str) -> list[Doc]:
    """The scaling configurations that launch from an image."""
    return SCALING_CONFIGURATION.all(store, lambda c: c.get("ImageId") == image_id)


def activities_of(store: Store, group_id: str) -> list[Doc]:
    """The scaling activities of a group, oldest first."""
    return SCALING_ACTIVITY.all(store, lambda a: a["ScalingGroupId"] == group_id)


def delete_group(store: Store, group_id: str) -> None:
    """Remove a scaling group with its scaling configurations, activities and lifecycle hooks."""
    with store.transaction():
        lifecycle_hooks.delete_group(store, group_id)
        for config in configurations_of(store, group_id):
            SCALING_CONFIGURATION.delete(store, config["ScalingConfigurationId"])
        for activity in activities_of(store, group_id):
            SCALING_ACTIVITY.delete(store, activity["ScalingActivityId"])
        SCALING_GROUP.delete(store, group_id)
