"""Shared pieces of the ESS 2022-02-22 API: lookups, paging and the group's view for Describe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import instances, lifecycle_hooks, scaling, scaling_groups
from ..errors import ApiError
from ..params import Params
from ..registry import Request

if TYPE_CHECKING:
    from ..cloud import Cloud

Doc = dict[str, Any]


def get_group(cloud: Cloud, group_id: str | None) -> Doc:
    group = scaling_groups.SCALING_GROUP.find(cloud.store, group_id or "")
    if group is None:
        raise ApiError("InvalidScalingGroupId.NotFound", f"The specified scaling group {group_id} does not exist.",
                       404)
    return group


def get_configuration(cloud: Cloud, config_id: str | None) -> Doc:
    config = scaling_groups.SCALING_CONFIGURATION.find(cloud.store, config_id or "")
    if config is None:
        raise ApiError("InvalidScalingConfigurationId.NotFound",
                       f"The specified scaling configuration {config_id} does not exist.", 404)
    return config


def page(req: Request, items: list[Doc], default_size: int = 10) -> tuple[list[Doc], dict[str, int]]:
    """One page of `items` and the paging fields of the response (ESS: 10 by default, at most 50)."""
    number = req.params.int("PageNumber", 1, minimum=1, maximum=100000) or 1
    size = req.params.int("PageSize", default_size, minimum=1, maximum=50) or default_size
    start = (number - 1) * size
    return items[start:start + size], {"TotalCount": len(items), "PageNumber": number, "PageSize": size}


def group_resource(group_id: str | None) -> str | None:
    """The RAM resource of a scaling group (`scalinggroup/<id>`), None when no group is named."""
    return f"scalinggroup/{group_id}" if group_id else None


def named_group(cloud: Cloud, params: Params) -> str | None:
    """RAM locator of the actions that name their group with `ScalingGroupId`."""
    return group_resource(params.raw.get("ScalingGroupId"))


def nested_params(req: Request, name: str) -> Params:
    """`Name.Field` parameters (e.g. `CapacityOptions.CompensateWithOnDemand`) as their own Params."""
    return Params(req.params.nested(name))


def capacities(cloud: Cloud, group: Doc) -> Doc:
    """The capacity counters of DescribeScalingGroups."""
    now = cloud.clock.now()
    members = scaling.members(cloud, group["ScalingGroupId"])
    waiting = lifecycle_hooks.waiting_instances(cloud.store, group["ScalingGroupId"])
    states = [scaling.lifecycle_state(group, m, now, waiting) for m in members]
    return {
        "TotalCapacity": len(members),
        "TotalInstanceCount": len(members),
        "ActiveCapacity": states.count("InService"),
        "PendingCapacity": states.count("Pending"),
        "RemovingCapacity": states.count("Removing"),
        "StoppedCapacity": states.count("Stopped"),
        "SpotCapacity": sum(1 for m in members if instances.is_spot(m)),
        "StandbyCapacity": 0,
        "ProtectedCapacity": 0,
        "PendingWaitCapacity": states.count("Pending:Wait"),
        "RemovingWaitCapacity": states.count("Removing:Wait"),
    }
