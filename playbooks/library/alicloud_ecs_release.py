#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_ecs_release
short_description: Release an ECS instance by id, as the console's "Release" does
description:
  - Calls ECS C(DeleteInstance) with C(Force=true) on a running instance, the recipe's test of a
    spot interruption ("All Actions > Release"). An instance that is already gone is C(changed=false).
  - Waits until ECS no longer lists the instance when O(wait=true).
options:
  instance_id:
    description: The instance to release.
    type: str
    required: true
  wait:
    description: Wait until the instance is gone.
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds.
    type: int
    default: 300
extends_documentation_fragment: [alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Release the training instance
  alicloud_ecs_release:
    instance_id: i-bp1abc
"""

RETURN = r"""
instance:
  description: The instance as ECS described it before the release (empty when it was gone).
  returned: always
  type: dict
"""

from typing import Any  # noqa: E402

from ansible.module_utils.alicloud import AlicloudModule, snake  # noqa: E402

GONE = ("InvalidInstanceId.NotFound", "InvalidInstance.NotFound", "IncorrectInstanceStatus.NotFound")


def describe(module: AlicloudModule, instance_id: str) -> dict[str, Any] | None:
    body = module.call("ecs", "DescribeInstances", {"RegionId": module.region,
                                                    "InstanceIds": f'["{instance_id}"]'}) or {}
    found = (body.get("Instances") or {}).get("Instance", [])
    return found[0] if found else None


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        instance_id=dict(type="str", required=True),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
    ))
    p = module.params
    module.require_region()
    before = describe(module, p["instance_id"])
    if before is None:
        module.exit_json(changed=False, instance={})
    if not module.check_mode:
        module.call("ecs", "DeleteInstance", {"InstanceId": p["instance_id"], "Force": True}, missing_ok=GONE)
        if p["wait"]:
            module.wait(lambda: describe(module, p["instance_id"]), lambda i: i is None,
                        timeout=p["wait_timeout"], what=f"the instance {p['instance_id']} to be released")
    module.exit_json(changed=True, instance=snake(before))


if __name__ == "__main__":
    main()
