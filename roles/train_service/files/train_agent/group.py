"""This instance's scaling group: which group launched it (ESS tags its instances), and the instance's side
of the group's SCALE_IN lifecycle hooks: whether the group holds it, how long, more time, and the
lifecycle action completed; the group set to 0 at the end of training."""

from __future__ import annotations

import json

from .cloud import RpcClient

GROUP_TAG = "acs:autoscaling:scalingGroupId"


def instance_tags(ecs: RpcClient, region: str, instance_id: str) -> dict[str, str]:
    """An instance's tags (DescribeInstances)."""
    answer = ecs.call("DescribeInstances", RegionId=region, InstanceIds=json.dumps([instance_id]))
    return {tag.get("TagKey"): tag.get("TagValue") for item in answer.get("Instances", {}).get("Instance", [])
            for tag in item.get("Tags", {}).get("Tag", [])}


def scaling_group_of(ecs: RpcClient, region: str, instance_id: str) -> str | None:
    """The scaling group that launched an instance (ESS tags its instances), None for another instance."""
    return instance_tags(ecs, region, instance_id).get(GROUP_TAG)


class ScaleIn:
    """This instance's side of the group's SCALE_IN lifecycle hooks (ESS 2022-02-22)."""

    def __init__(self, ess: RpcClient, region: str, group_id: str, instance_id: str) -> None:
        self.ess, self.region, self.group_id, self.instance_id = ess, region, group_id, instance_id

    def waiting(self) -> bool:
        """Whether the group holds this instance in Removing:Wait (it removes it once the action completes)."""
        answer = self.ess.call("DescribeScalingInstances", RegionId=self.region, ScalingGroupId=self.group_id,
                               **{"InstanceIds.1": self.instance_id})
        return any(row.get("LifecycleState") == "Removing:Wait" for row in answer.get("ScalingInstances", []))

    def pending_actions(self) -> list[tuple[str, str]]:
        """(hook id, token) of each pending lifecycle action that holds this instance."""
        found = []
        activities = self.ess.call("DescribeScalingActivities", RegionId=self.region, ScalingGroupId=self.group_id,
                                   StatusCode="InProgress").get("ScalingActivities", [])
        for activity in activities:
            actions = self.ess.call("DescribeLifecycleActions", RegionId=self.region,
                                    ScalingActivityId=activity["ScalingActivityId"], LifecycleActionStatus="Pending")
            found += [(item["LifecycleHookId"], item["LifecycleActionToken"])
                      for item in actions.get("LifecycleActions", [])
                      if self.instance_id in item.get("InstanceIds", [])]
        return found

    def hook_timeout(self) -> float | None:
        """The shortest HeartbeatTimeout (seconds) of the hooks whose pending actions hold this instance."""
        held = {hook_id for hook_id, _token in self.pending_actions()}
        if not held:
            return None
        hooks = self.ess.call("DescribeLifecycleHooks", RegionId=self.region, ScalingGroupId=self.group_id,
                              PageSize=50).get("LifecycleHooks", [])
        return min((float(hook["HeartbeatTimeout"]) for hook in hooks
                    if hook.get("LifecycleHookId") in held and hook.get("HeartbeatTimeout")), default=None)

    def heartbeat(self, seconds: int) -> int:
        """Give this instance's pending actions `seconds` from now (RecordLifecycleActionHeartbeat; ESS takes
        30 to 21600, and a wait of at most 6 hours in all); the number of actions."""
        actions = self.pending_actions()
        for hook_id, token in actions:
            # ESS spells this action's parameters in lower camel case (the SDK's request model).
            self.ess.call("RecordLifecycleActionHeartbeat", RegionId=self.region, lifecycleHookId=hook_id,
                          lifecycleActionToken=token, heartbeatTimeout=seconds)
        return len(actions)

    def complete(self, result: str = "CONTINUE") -> int:
        """Let the removal go on; the number of actions completed."""
        actions = self.pending_actions()
        for hook_id, token in actions:
            self.ess.call("CompleteLifecycleAction", RegionId=self.region, LifecycleHookId=hook_id,
                          LifecycleActionToken=token, LifecycleActionResult=result)
        return len(actions)

    def scale_to_zero(self) -> None:
        """Set the group's desired capacity to 0: it removes its instances (this one too)."""
        # No RegionId: ESS's ModifyScalingGroup takes none (the group's id says where it is).
        self.ess.call("ModifyScalingGroup", ScalingGroupId=self.group_id, DesiredCapacity=0)
