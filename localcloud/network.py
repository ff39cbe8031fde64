"""The records of the network: VPCs, vSwitches and security groups.

This module owns the `vpc`, `vswitch` and `security_group` records: the VPC and ECS APIs, the
Auto Scaling engine, the metadata service and the containers backend read and write them
through it.
"""

from __future__ import annotations

from typing import Any

from .store import Kind, Store

Doc = dict[str, Any]

VPC = Kind("vpc", "VpcId")
VSWITCH = Kind("vswitch", "VSwitchId")
SECURITY_GROUP = Kind("security_group", "SecurityGroupId")


def vswitches_of(store: Store, vpc_id: str) -> list[Doc]:
    """The vSwitches of a VPC."""
    return VSWITCH.all(store, lambda v: v["VpcId"] == vpc_id)


def security_groups_of(store: Store, vpc_id: str) -> list[Doc]:
    """The security groups of a VPC."""
    return SECURITY_GROUP.all(store, lambda g: g.get("VpcId") == vpc_id)
