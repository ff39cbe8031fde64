#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_scaling_info
short_description: What a scaling group runs, where, at what price, and its activities
description:
  - Lists the instances of a scaling group (zone, type, spot or pay-as-you-go, lifecycle state,
    spot price) and its latest scaling activities. Changes nothing.
options:
  scaling_group:
    description: The scaling group, by id or name.
    type: str
    required: true
  activities:
    description: How many of the latest scaling activities to return (0 for none).
    type: int
    default: 10
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Read what the training group runs
  alicloud_scaling_info:
    scaling_group: ess-lora-deepseek7b
  register: training

- name: Show the instances
  ansible.builtin.debug:
    msg: "{{ training.instances | map(attribute='instance_id') | list }}"
"""

RETURN = r"""
scaling_group:
  description: The group (empty when there is none).
  returned: always
  type: dict
instances:
  description: The group's instances.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id: {description: The instance., type: str}
    zone_id: {description: Its zone., type: str}
    lifecycle_state: {description: 'C(InService), C(Pending), C(Removing), ...', type: str}
    spot_strategy: {description: NoSpot for pay-as-you-go., type: str}
    charge: {description: C(spot) or C(pay-as-you-go)., type: str}
    instance_type: {description: The instance type (from ECS)., type: str}
    spot_price_limit: {description: The instance's spot price limit (from ECS)., type: float}
    status: {description: The ECS status., type: str}
activities:
  description: The latest scaling activities, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    scaling_activity_id: {description: The activity., type: str}
    status_code: {description: 'C(Successful), C(Warning), C(Failed), C(InProgress) or C(Rejected).', type: str}
    cause: {description: Why it ran., type: str}
    description: {description: What it did., type: str}
    start_time: {description: When it started., type: str}
spot_count:
  description: How many of the instances are spot instances.
  returned: always
  type: int
"""

import json  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule, snake  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_ess import find_group  # noqa: E402


def ecs_details(module: AlicloudModule, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
    details: dict[str, dict[str, Any]] = {}
    for start in range(0, len(instance_ids), 100):
        chunk = instance_ids[start:start + 100]
        body = module.call("ecs", "DescribeInstances", {"RegionId": module.region, "PageSize": 100,
                                                        "InstanceIds": json.dumps(chunk)}) or {}
        for instance in (body.get("Instances") or {}).get("Instance", []):
            details[instance["InstanceId"]] = instance
    return details


def merge(member: dict[str, Any], instance: dict[str, Any] | None) -> dict[str, Any]:
    spot = member.get("SpotStrategy") not in (None, "", "NoSpot")
    merged = snake(member)
    merged["charge"] = "spot" if spot else "pay-as-you-go"
    if instance:
        merged.update(instance_type=instance.get("InstanceType"), status=instance.get("Status"),
                      spot_price_limit=instance.get("SpotPriceLimit"),
                      private_ip=((instance.get("VpcAttributes") or {}).get("PrivateIpAddress") or {}).get(
                          "IpAddress", [None])[0])
    return merged


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        scaling_group=dict(type="str", required=True),
        activities=dict(type="int", default=10),
    ))
    p = module.params
    module.check_region()
    reference = p["scaling_group"]
    group = (find_group(module, group_id=reference) if reference.startswith("asg-") else None) or find_group(
        module, name=reference)
    if group is None:
        module.exit_json(changed=False, scaling_group={}, instances=[], activities=[], spot_count=0)
    group_id = group["ScalingGroupId"]
    members: list[dict[str, Any]] = []
    page = 1
    while True:
        body = module.call("ess", "DescribeScalingInstances", {"RegionId": module.region, "ScalingGroupId": group_id,
                                                               "PageSize": 50, "PageNumber": page}) or {}
        batch = body.get("ScalingInstances") or []
        members.extend(batch)
        if len(batch) < 50:
            break
        page += 1
    details = ecs_details(module, [m["InstanceId"] for m in members]) if members else {}
    instances = [merge(m, details.get(m["InstanceId"])) for m in members]
    activities: list[dict[str, Any]] = []
    if p["activities"] > 0:
        body = module.call("ess", "DescribeScalingActivities", {"RegionId": module.region, "ScalingGroupId": group_id,
                                                                "PageSize": min(p["activities"], 50)}) or {}
        activities = [snake(a) for a in (body.get("ScalingActivities") or [])][:p["activities"]]
    module.exit_json(changed=False, scaling_group=snake(group), instances=instances, activities=activities,
                     spot_count=sum(1 for i in instances if i["charge"] == "spot"))


if __name__ == "__main__":
    main()
