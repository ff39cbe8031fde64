"""ECS (2014-05-26) look-ups shared by the ECS modules, and the codes ECS answers for something gone.

ECS answers `InvalidInstanceId.NotFound` (404) for an instance id it does not know, on
DescribeInstanceRamRole, DeleteInstance and the other calls that take one id (DescribeInstances
answers an empty list instead); it has no other "not found" code for instances.
"""

from __future__ import annotations

import json
from typing import Any

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import tags_to_dict

INSTANCE_GONE = ("InvalidInstanceId.NotFound",)
IMAGE_GONE = ("InvalidImageId.NotFound",)
SECURITY_GROUP_GONE = ("InvalidSecurityGroupId.NotFound",)


def describe_instance(module: Any, instance_id: str) -> dict[str, Any] | None:
    """The instance with this id as DescribeInstances answers it; None when ECS no longer lists it."""
    body = module.call("ecs", "DescribeInstances", {"RegionId": module.region,
                                                    "InstanceIds": json.dumps([instance_id])}) or {}
    found = (body.get("Instances") or {}).get("Instance", [])
    return found[0] if found else None


def find_instance(module: Any, name: str) -> dict[str, Any] | None:
    """The one instance with this name, its tags as a dict and its RAM role (`RamRoleName`, "" for none)."""
    body = module.call("ecs", "DescribeInstances", {"RegionId": module.region, "InstanceName": name,
                                                    "PageSize": 100}) or {}
    found = [i for i in (body.get("Instances") or {}).get("Instance", []) if i.get("InstanceName") == name]
    if len(found) > 1:
        module.fail_json(msg=f"{len(found)} instances are named {name}; the module manages one instance by name.")
    if not found:
        return None
    instance = dict(found[0])
    instance["Tags"] = tags_to_dict(instance.get("Tags"))
    roles = module.call("ecs", "DescribeInstanceRamRole", {
        "RegionId": module.region, "InstanceIds": json.dumps([instance["InstanceId"]])},
        missing_ok=INSTANCE_GONE) or {}
    sets = (roles.get("InstanceRamRoleSets") or {}).get("InstanceRamRoleSet", [])
    instance["RamRoleName"] = sets[0].get("RamRoleName", "") if sets else ""
    return instance


def wait_instance_status(module: Any, instance_id: str, statuses: tuple[str, ...], timeout: float) -> None:
    """Wait until the instance has one of `statuses`, or (no statuses) until ECS no longer lists it."""
    module.wait(lambda: describe_instance(module, instance_id),
                lambda i: (i is None and not statuses) or (i is not None and i.get("Status") in statuses),
                timeout=timeout, what=f"the instance {instance_id} to be {' or '.join(statuses) or 'released'}")
