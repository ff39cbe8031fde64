# When a run fails after it created cloud resources, it names them and how to remove them.
from __future__ import annotations

DOCUMENTATION = """
    name: leftovers
    type: aggregate
    short_description: After a failed run, the cloud resources it created and how to remove them
    description:
      - Records the resources that the collection's modules create during a run (a role, a policy, a
        bucket, a VPC, a vSwitch, a security group, an instance, an image, a scaling group...), from
        their results (names and ids only, never credentials).
      - When the run ends with a failed or unreachable host and it created some, prints them as a
        warning, with the command that removes them (C(teardown.yml) with the same settings).
      - Enabled for the project's playbooks in ansible.cfg (C(callbacks_enabled)).
"""

from typing import Any  # noqa: E402

from ansible import context  # noqa: E402
from ansible.plugins.callback import CallbackBase  # noqa: E402

PREFIX = "spotfirst.finetune.alicloud_"
# Per module: the result's key, then the fields that name the resource (the first one present).
RESOURCES = {
    "ram_role": ("role", ("role_name",)),
    "ram_policy": ("policy", ("policy_name",)),
    "oss_bucket": ("bucket", ("name",)),
    "vpc": ("vpc", ("vpc_id",)),
    "vswitch": ("vswitch", ("v_switch_id", "cidr_block")),
    "security_group": ("security_group", ("security_group_id",)),
    "ecs_instance": ("instance", ("instance_id", "instance_name")),
    "image": ("image", ("image_id", "image_name")),
    "scaling_group": ("scaling_group", ("scaling_group_id", "scaling_group_name")),
    "scaling_configuration": ("scaling_configuration", ("scaling_configuration_id",)),
    "scaling_lifecycle_hook": ("lifecycle_hook", ("lifecycle_hook_id", "lifecycle_hook_name")),
}


def created_resource(action: str, args: dict[str, Any], result: dict[str, Any]) -> str | None:
    """'vpc vpc-123' for a result that created or changed a resource; None for anything else."""
    if not action.startswith(PREFIX) or not result.get("changed") or args.get("state", "present") == "absent":
        return None
    kind = action.removeprefix(PREFIX)
    if kind not in RESOURCES:
        return None
    key, fields = RESOURCES[kind]
    found = result.get(key) or {}
    name = next((str(found[f]) for f in fields if isinstance(found, dict) and found.get(f)), None)
    return f"{kind.replace('_', ' ')} {name}" if name else None


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "spotfirst.finetune.leftovers"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.created: list[str] = []

    def _record(self, result: Any) -> None:
        task = result._task
        items = result._result.get("results") if "results" in result._result else [result._result]
        for item in items or []:
            if not isinstance(item, dict) or item.get("ansible_check_mode") or task.check_mode is True:
                continue
            found = created_resource(task.resolved_action or task.action, task.args, item)
            if found and found not in self.created:
                self.created.append(found)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        failed = any(stats.summarize(host)["failures"] or stats.summarize(host)["unreachable"]
                     for host in stats.processed)
        if not failed or not self.created or context.CLIARGS.get("check"):
            return
        self._display.warning(
            "This run failed after it created or changed: " + ", ".join(self.created) + ". Fix what failed and "
            "run it again (it goes on from there), or remove them with `ansible-playbook teardown.yml`, giving it "
            "the same -i and -e settings.")
