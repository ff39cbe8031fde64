"""Auto Scaling (ESS 2022-02-22) look-ups shared by the scaling modules."""

from __future__ import annotations

from typing import Any

GROUP_GONE = ("InvalidScalingGroupId.NotFound",)


def find_group(module: Any, name: str | None = None, group_id: str | None = None) -> dict[str, Any] | None:
    """A scaling group by id or by name (names are unique per region in ESS)."""
    params: dict[str, Any] = {"RegionId": module.region, "PageSize": 50}
    if group_id:
        params["ScalingGroupIds"] = [group_id]
    else:
        params["ScalingGroupName"] = name
    body = module.call("ess", "DescribeScalingGroups", params, missing_ok=GROUP_GONE) or {}
    for group in body.get("ScalingGroups") or []:
        if group_id and group.get("ScalingGroupId") == group_id:
            return group
        if not group_id and group.get("ScalingGroupName") == name:
            return group
    return None


def group_id_of(module: Any, reference: str) -> str | None:
    """The id of a group given by id (`asg-...`) or by name."""
    group = find_group(module, group_id=reference) if reference.startswith("asg-") else None
    group = group or find_group(module, name=reference)
    return group["ScalingGroupId"] if group else None


def configurations(module: Any, group_id: str) -> list[dict[str, Any]]:
    body = module.call("ess", "DescribeScalingConfigurations", {
        "RegionId": module.region, "ScalingGroupId": group_id, "PageSize": 50}, missing_ok=GROUP_GONE) or {}
    return list(body.get("ScalingConfigurations") or [])


def find_configuration(module: Any, group_id: str, reference: str) -> dict[str, Any] | None:
    """A configuration of the group by id (`asc-...`) or by name."""
    for config in configurations(module, group_id):
        if reference in (config.get("ScalingConfigurationId"), config.get("ScalingConfigurationName")):
            return config
    return None
