"""ECS: starting, stopping, rebooting and deleting instances.

The API sets the transitional status (Starting, Stopping) and asks the backend to act;
`instances.sync` moves the record on as the machine gets there. Releasing goes through
`instances.release`, also for instances of a scaling group (the Auto Scaling engine notices).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import instances
from ..backends import InstanceBackend
from ..errors import ApiError, invalid
from ..params import Params
from ..registry import Request, action
from .ecs_common import Record, dry_run, id_list, incorrect_status

if TYPE_CHECKING:
    from ..cloud import Cloud

# Released only with Force: a machine that may still be doing work.
NEEDS_FORCE = ("Pending", "Starting", "Running", "Stopping")
MAX_BATCH = 100


@dataclass(frozen=True)
class Transition:
    """A lifecycle action: the status it needs, the status it sets, and what the backend must do."""

    name: str
    needs: str
    sets: str
    act: Callable[[InstanceBackend, Record], None]

    def check(self, instance: Record) -> None:
        if instance["Status"] != self.needs:
            raise incorrect_status(instance["InstanceId"], instance["Status"], self.name)

    def apply(self, cloud: Cloud, instance: Record) -> None:
        self.check(instance)
        instances.INSTANCE.update(cloud.store, instance["InstanceId"], Status=self.sets)
        self.act(cloud.backend, instance)


def _reboot(force: bool) -> Callable[[InstanceBackend, Record], None]:
    def act(backend: InstanceBackend, instance: Record) -> None:
        # A reboot is a shutdown followed by a boot; the backend sees both requests in that order.
        backend.stop(instance, force)
        backend.start(instance)
    return act


START = Transition("StartInstance", "Stopped", "Starting", lambda backend, i: backend.start(i))


def stop(force: bool) -> Transition:
    return Transition("StopInstance", "Running", "Stopping", lambda backend, i: backend.stop(i, force))


def reboot(force: bool) -> Transition:
    return Transition("RebootInstance", "Running", "Starting", _reboot(force))


def _one(cloud: Cloud, p: Params, transition: Transition) -> dict:
    instance = instances.get(cloud, p.str("InstanceId", required=True) or "")
    transition.check(instance)
    dry_run(p)
    transition.apply(cloud, instance)
    return {}


def _batch(cloud: Cloud, p: Params, transition: Transition) -> dict:
    """The *Instances actions: AllTogether (default) acts only when every instance can;
    SuccessFirst acts on those that can and reports each result."""
    ids = id_list(p, "InstanceId", MAX_BATCH)
    if not ids:
        raise ApiError("MissingParameter.InstanceIds", "Specify at least one InstanceId.N.")
    mode = p.str("BatchOptimization", "AllTogether", choices=("AllTogether", "SuccessFirst"))
    if mode == "AllTogether":
        for instance_id in ids:
            transition.check(instances.get(cloud, instance_id))
    dry_run(p)
    return {"InstanceResponses": {"InstanceResponse": [_apply_and_report(cloud, transition, i) for i in ids]}}


def _apply_and_report(cloud: Cloud, transition: Transition, instance_id: str) -> dict[str, Any]:
    instance = instances.INSTANCE.find(cloud.store, instance_id)
    if instance is None:
        return {"InstanceId": instance_id, "Code": "InvalidInstanceId.NotFound",
                "Message": f"The specified instance {instance_id} does not exist.", "PreviousStatus": "",
                "CurrentStatus": ""}
    try:
        transition.apply(cloud, instance)
    except ApiError as err:
        return {"InstanceId": instance_id, "Code": err.code, "Message": err.message,
                "PreviousStatus": instance["Status"], "CurrentStatus": instance["Status"]}
    return {"InstanceId": instance_id, "Code": "200", "Message": "success", "PreviousStatus": instance["Status"],
            "CurrentStatus": transition.sets}


def _force(p: Params, name: str) -> bool:
    return bool(p.bool(name, False))


@action("ecs", "StartInstance")
def start_instance(cloud: Cloud, req: Request) -> dict:
    return _one(cloud, req.params, START)


@action("ecs", "StartInstances")
def start_instances(cloud: Cloud, req: Request) -> dict:
    return _batch(cloud, req.params, START)


@action("ecs", "StopInstance")
def stop_instance(cloud: Cloud, req: Request) -> dict:
    return _one(cloud, req.params, stop(_force(req.params, "ForceStop")))


@action("ecs", "StopInstances")
def stop_instances(cloud: Cloud, req: Request) -> dict:
    return _batch(cloud, req.params, stop(_force(req.params, "ForceStop")))


@action("ecs", "RebootInstance")
def reboot_instance(cloud: Cloud, req: Request) -> dict:
    return _one(cloud, req.params, reboot(_force(req.params, "ForceStop")))


@action("ecs", "RebootInstances")
def reboot_instances(cloud: Cloud, req: Request) -> dict:
    return _batch(cloud, req.params, reboot(_force(req.params, "ForceReboot")))


def _check_deletable(instance: Record, force: bool) -> None:
    if instance["Status"] in NEEDS_FORCE and not force:
        raise incorrect_status(instance["InstanceId"], instance["Status"],
                               "DeleteInstance without Force (stop it first, or pass Force=true)")


@action("ecs", "DeleteInstance")
def delete_instance(cloud: Cloud, req: Request) -> dict:
    p = req.params
    instance = instances.get(cloud, p.str("InstanceId", required=True) or "")
    _check_deletable(instance, bool(p.bool("Force", False)))
    dry_run(p)
    instances.release(cloud, instance["InstanceId"], reason="released by DeleteInstance")
    return {}


@action("ecs", "DeleteInstances")
def delete_instances(cloud: Cloud, req: Request) -> dict:
    p = req.params
    ids = id_list(p, "InstanceId", MAX_BATCH)
    if not ids:
        raise invalid("InstanceId", "Specify at least one InstanceId.N.")
    force = bool(p.bool("Force", False))
    records = [instances.get(cloud, i) for i in ids]
    for instance in records:
        _check_deletable(instance, force)
    dry_run(p)
    for instance in records:
        instances.release(cloud, instance["InstanceId"], reason="released by DeleteInstances")
    return {}
