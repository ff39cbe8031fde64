"""When training ends (complete, or failed more often in a row than `failure_limit` allows): report it
(a CloudMonitor custom event, a webhook) and stop paying (the scaling group to 0 instances, this one let go
at once). The cloud calls retry as every call of the agent does (cloud.retried); what still fails is logged
and reported, never left silent."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from .checkpoints import atomic_write, checkpoints, newest_valid_checkpoint, step_of, utc_now
from .cloud import CloudError, RpcClient, post_webhook, put_custom_event
from .completion import completion, trainer_progress
from .config import Config
from .events import EventLog
from .group import ScaleIn, scaling_group_of
from .instance import Instance
from .logs import LOG
from .protocol import COMPLETE_MARKER, ERROR_LOG, EVENTS_DIR, Event

# How long a finished agent waits for its group to hold it at the scale-in hook (then it lets it go).
SCALE_IN_WAIT = 60.0
# The ending's calls must get through, or the group's instances go on billing: they ride out a cloud that
# throttles or does not answer for about a minute (cloud.retried's backoff: 46-91 s over 25 attempts),
# where any other call of the agent gives up after 5 (under 11 s). A 403 is still not retried.
END_ATTEMPTS = 25
ERROR_TAIL_LINES = 30
ERROR_TAIL_CHARS = 3000


def error_tail(log_dir: Path) -> str:
    """The last lines of train_error.log (what swift and the agent said went wrong)."""
    try:
        lines = (log_dir / ERROR_LOG).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-ERROR_TAIL_LINES:])[-ERROR_TAIL_CHARS:]


def training_summary(config: Config, instance: Instance, status: str) -> dict[str, Any]:
    """What the end-of-training event says: where the result is, how far it got, how long it took and on
    which instances (from their event logs)."""
    found = checkpoints(config.output_dir)
    progress = trainer_progress(found[0][1]) if found else None
    starts, instances = [], []
    for log in sorted((config.output_dir / EVENTS_DIR).glob("*.jsonl")):
        instances.append(log.stem)
        with contextlib.suppress(OSError, ValueError, IndexError):
            starts.append(float(json.loads(log.read_text().splitlines()[0])["time"]))
    return {
        "status": status,
        "output_dir": str(config.output_dir),
        "bucket": config.lease_bucket,
        "final_checkpoint": str(found[0][1]) if found else None,
        "global_step": progress[0] if progress else 0,
        "max_steps": progress[1] if progress else None,
        "wall_seconds": round(time.time() - min(starts), 1) if starts else None,
        "instances_used": instances,
        "instance": instance.instance_id,
    }


class Ending:
    """What an agent does when training ends: say so, and stop paying for the group's instances.

    The CloudMonitor event (and the webhook) come first, then the group's desired capacity goes to 0,
    then the agent completes its own scale-in lifecycle action so that the group releases it at once.
    Each call retries what is transient (cloud.retried); a step that still fails is logged and reported (a
    failed scale-to-zero is itself reported as a failure), never left silent.
    """

    def __init__(self, config: Config, instance: Instance, events: EventLog) -> None:
        self.config, self.instance, self.events = config, instance, events
        self.cms = RpcClient(config.api_endpoint.format(product="cms", region=instance.region), "2019-01-01",
                             instance.credentials, attempts=END_ATTEMPTS)
        self.ecs, self.ess = instance.ecs.patient(END_ATTEMPTS), instance.ess.patient(END_ATTEMPTS)

    def notify(self, summary: dict[str, Any]) -> bool:
        """Report `summary`; whether every configured channel took it."""
        content = json.dumps(summary, sort_keys=True)
        delivered = True
        if self.config.event_name:
            try:
                put_custom_event(self.cms, self.config.event_name, content)
                LOG.info("reported the CloudMonitor event %s: training %s", self.config.event_name, summary["status"])
            except (CloudError, OSError) as exc:
                LOG.error("cannot report the CloudMonitor event %s (%s): does the instance role allow "
                          "cms:PutCustomEvent?", self.config.event_name, exc)
                delivered = False
        if self.config.notify_webhook:
            text = (f"{self.config.event_name or 'training'}: training {summary['status']} at step "
                    f"{summary['global_step']}/{summary['max_steps'] or '?'} ({summary['final_checkpoint']})")
            try:
                post_webhook(self.config.notify_webhook, {"msgtype": "text", "text": {"content": text},
                                                          "event": self.config.event_name, "result": summary})
                LOG.info("posted the result to the webhook")
            except (CloudError, OSError, ValueError) as exc:  # never fatal: the event is the record
                LOG.warning("the webhook did not take the result (%s)", exc)
                delivered = False
        self.events.add(Event.NOTIFIED, status=summary["status"], delivered=delivered)
        return delivered

    def stop_paying(self) -> str | None:
        """Set the group to 0 instances and let this one go; None when done, else what went wrong."""
        if not self.config.scale_to_zero:
            return None
        try:
            group_id = scaling_group_of(self.ecs, self.instance.region, self.instance.instance_id)
        except (CloudError, OSError) as exc:
            return f"cannot tell this instance's scaling group ({exc})"
        if group_id is None:
            LOG.info("this instance is in no scaling group: nothing to scale in")
            return None
        scale_in = ScaleIn(self.ess, self.instance.region, group_id, self.instance.instance_id)
        try:
            scale_in.scale_to_zero()
        except (CloudError, OSError) as exc:
            return (f"cannot set the desired capacity of {group_id} to 0 ({exc}); the instance keeps running and "
                    "billing: set it by hand, and check that the instance role allows ess:ModifyScalingGroup "
                    "on the group")
        LOG.info("desired capacity of %s set to 0: the group removes this instance", group_id)
        self.events.add(Event.SCALED_TO_ZERO, group=group_id)
        self.events.poll()  # on the bucket before the group releases this instance
        deadline = time.monotonic() + SCALE_IN_WAIT
        while time.monotonic() < deadline:
            try:
                if scale_in.complete():
                    LOG.info("lifecycle action completed: the group releases this instance now")
                    self.events.add(Event.RELEASED_SELF)
                    return None
            except (CloudError, OSError) as exc:
                LOG.warning("cannot complete this instance's lifecycle action yet (%s)", exc)
            time.sleep(0.2)
        LOG.info("no lifecycle action held this instance within %gs; the group removes it", SCALE_IN_WAIT)
        return None

    def complete(self) -> None:
        """Training is complete: report it once (the marker records that it was), then stop paying."""
        marker = self.config.output_dir / COMPLETE_MARKER
        record = json.loads(marker.read_text()) if marker.is_file() else {}
        if not record.get("notified_at"):
            self.notify(training_summary(self.config, self.instance, "complete"))
            record["notified_at"] = utc_now()
            with contextlib.suppress(OSError):
                atomic_write(marker, json.dumps(record, indent=2) + "\n")
        if problem := self.stop_paying():
            LOG.error("%s", problem)
            self.notify({**training_summary(self.config, self.instance, "failed"), "error": problem})

    def give_up(self, error: str) -> None:
        """Training failed in a way a restart does not fix: report it with the error, then stop paying."""
        summary = {**training_summary(self.config, self.instance, "failed"), "error": error,
                   "error_tail": error_tail(self.config.log_dir)}
        self.notify(summary)
        if problem := self.stop_paying():
            LOG.error("%s", problem)


class FailedStarts:
    """The failed starts in a row on this instance, without progress (a newer valid checkpoint) between them."""

    def __init__(self, config: Config) -> None:
        self.path = config.state_dir / "failed_starts.json"

    def add(self, step: int) -> int:
        """Count one more failed start at checkpoint `step`; how many in a row."""
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            record = {}
        count = int(record.get("count", 0)) + 1 if record.get("step") == step else 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps({"count": count, "step": step}) + "\n")
        return count

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def conclude(config: Config, instance: Instance | None, events: EventLog, code: int, error: str | None = None) -> int:
    """After a start: on completion, or at the failure limit, report it and stop paying; the exit code.

    Without an instance (a host, tests) there is no group and no event: the code as it was."""
    if instance is None:
        return code
    ending, failures = Ending(config, instance, events), FailedStarts(config)
    if completion(config.output_dir):
        failures.clear()
        ending.complete()
        return 0
    if code == 0:
        failures.clear()
        return 0
    count = failures.add(step_of(newest_valid_checkpoint(config)))
    if count < config.failure_limit:
        LOG.error("start %d of %d in a row failed (exit %d); systemd starts the agent again", count,
                  config.failure_limit, code)
        return code
    message = error or f"swift sft failed {count} times in a row (last exit {code}) without a new checkpoint"
    LOG.error("%s: giving up, reporting it and setting the scaling group to 0 instances", message)
    ending.give_up(message)
    failures.clear()
    return 0
