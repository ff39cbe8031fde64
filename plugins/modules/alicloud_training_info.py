#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_training_info
short_description: Where a training stands, from its output prefix in OSS
description:
  - Reads what the training writes under O(prefix) in O(bucket) - ms-swift's C(logging.jsonl), the
    checkpoints, the training agent's completion marker, its lease and the instances' event logs -
    and says where training stands - step N of M, the checkpoints (complete, and checked by the agent),
    the newest one's age, steps per minute over the last O(rate_window) seconds and the time left at
    that rate, who holds the lease, whether training is complete. Changes nothing.
  - The playbooks' waits poll it (M(spotfirst.finetune.wait_until)); C(status.yml) shows it.
options:
  bucket:
    description: The bucket.
    type: str
    required: true
  prefix:
    description: The training's output prefix (C(output/)).
    type: str
    required: true
  lease_key:
    description: The training lease object (C(output/.train-lease)); omitted, no lease is read.
    type: str
  rate_window:
    description: The seconds over which RV(steps_per_minute) is measured.
    type: float
    default: 300
  event_logs:
    description: Return every instance's event log (RV(event_logs)), as the timeline draws it.
    type: bool
    default: false
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Read where training stands
  alicloud_training_info:
    bucket: ess-lora-deepseek7b-data
    prefix: output/
    lease_key: output/.train-lease
  register: training

- name: Show it
  ansible.builtin.debug:
    msg: "step {{ training.step }}/{{ training.max_steps }}, checkpoint-{{ training.newest_checkpoint }}"
"""

RETURN = r"""
state:
  description: C(no bucket) (the bucket does not exist), C(not started) (nothing logged yet), C(training) or
    C(complete).
  returned: always
  type: str
step:
  description: The last step logging.jsonl shows (0 before the first).
  returned: always
  type: int
max_steps:
  description: The steps of the whole training (None before the first step).
  returned: always
  type: int
percent:
  description: RV(step) of RV(max_steps) in percent (None without RV(max_steps)).
  returned: always
  type: float
steps:
  description: logging.jsonl's step sequence, in file order (a resume repeats steps).
  returned: always
  type: list
  elements: int
complete:
  description: The agent's completion marker exists, or logging.jsonl ends at its last step.
  returned: always
  type: bool
checkpoints:
  description: The steps of the complete checkpoints (trainer_state.json written), ascending.
  returned: always
  type: list
  elements: int
valid_checkpoints:
  description: The steps of the checkpoints the agent checked (its manifest written), ascending.
  returned: always
  type: list
  elements: int
newest_checkpoint:
  description: The step of the newest complete checkpoint (0 for none).
  returned: always
  type: int
newest_checkpoint_age_seconds:
  description: Seconds since the newest complete checkpoint was written (OSS's time; None for none).
  returned: always
  type: float
steps_per_minute:
  description: The newest trainer's steps per minute over the last O(rate_window) seconds (its event log).
  returned: always
  type: float
eta_seconds:
  description: Seconds to the last step at RV(steps_per_minute) (None without a rate).
  returned: always
  type: float
trainer:
  description: The instance whose event log shows the newest step - the lease holder's log, or the newest log
    (None before the first step).
  returned: always
  type: str
lease:
  description: The training lease - holder, acquired (epoch), heartbeat_age_seconds; None when nobody holds it.
  returned: always
  type: dict
object_keys:
  description: The object keys under O(prefix).
  returned: always
  type: list
  elements: str
event_logs:
  description: With O(event_logs), each instance's event log entries ({instance id - list of events}).
  returned: when event_logs
  type: dict
"""

import json  # noqa: E402
import time  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_oss import (  # noqa: E402
    list_objects,
    read_tail,
)
from ansible_collections.spotfirst.finetune.plugins.module_utils.training_state import (  # noqa: E402
    COMPLETE_MARKER,
    TRAINER_STATE,
    agent_events,
    checkpoint_steps,
    eta_seconds,
    event_log_name,
    logging_ended,
    logging_max_steps,
    logging_steps,
    step_times,
    steps_per_minute,
    valid_checkpoint_steps,
)

LOG_BYTES = 8 * 1024 * 1024


def read_text(module: AlicloudModule, bucket: str, key: str) -> str:
    found = read_tail(module, bucket, key, LOG_BYTES)
    return found["content"] if found else ""


def age_seconds(iso: str | None, now: float) -> float | None:
    if not iso:
        return None
    return round(max(0.0, now - datetime.fromisoformat(iso).timestamp()), 1)


def lease_state(module: AlicloudModule, bucket: str, key: str | None, now: float) -> dict[str, Any] | None:
    if not key:
        return None
    text = read_text(module, bucket, key)
    try:
        raw = json.loads(text)
        return {"holder": str(raw["holder"]), "acquired": float(raw["acquired"]),
                "heartbeat_age_seconds": round(max(0.0, now - float(raw["heartbeat"])), 1)}
    except (ValueError, KeyError, TypeError):
        return None


def training_info(module: AlicloudModule, bucket: str, prefix: str, lease_key: str | None, window: float,
                  with_event_logs: bool) -> dict[str, Any]:
    now = time.time()
    import alibabacloud_oss_v2 as oss
    bucket_info = module.oss_call("get_bucket_info", oss.GetBucketInfoRequest(bucket=bucket),
                                  missing_ok=("NoSuchBucket",))
    if bucket_info is None:
        return {"state": "no bucket", "step": 0, "max_steps": None, "steps": [], "percent": None, "complete": False,
                "checkpoints": [], "valid_checkpoints": [], "newest_checkpoint": 0,
                "newest_checkpoint_age_seconds": None, "steps_per_minute": None, "eta_seconds": None,
                "trainer": None, "lease": None, "object_keys": [], **({"event_logs": {}} if with_event_logs else {})}
    objects = list_objects(module, bucket, prefix)[0]
    keys = [o["key"] for o in objects]
    log = read_text(module, bucket, prefix + "logging.jsonl")
    steps, max_steps = logging_steps(log), logging_max_steps(log)
    step = steps[-1] if steps else 0
    checkpoints = checkpoint_steps(keys, prefix)
    newest = checkpoints[-1] if checkpoints else 0
    modified = {o["key"]: o["last_modified"] for o in objects}
    complete = (prefix + COMPLETE_MARKER) in keys or logging_ended(log, steps, max_steps)
    # The event logs: all of them when asked, else the trainer's: the lease holder's, or the newest one.
    lease = lease_state(module, bucket, lease_key, now)
    logs = sorted(((name, o) for o in objects if (name := event_log_name(o["key"], prefix))),
                  key=lambda log: log[1]["last_modified"] or "")
    holder = [log for log in logs if lease and log[0] == lease["holder"]]
    wanted = logs if with_event_logs else holder or logs[-1:]
    texts = {name: read_text(module, bucket, o["key"]) for name, o in wanted}
    newest_steps = max(((name, step_times(text)) for name, text in texts.items()),
                       key=lambda item: item[1][-1][1] if item[1] else 0.0, default=(None, []))
    rate = None if complete else steps_per_minute(newest_steps[1], now, window)
    result = {
        "state": "complete" if complete else ("training" if steps or checkpoints else "not started"),
        "step": step, "max_steps": max_steps, "steps": steps,
        "percent": round(100 * step / max_steps, 1) if max_steps else None,
        "complete": complete, "checkpoints": checkpoints, "valid_checkpoints": valid_checkpoint_steps(keys, prefix),
        "newest_checkpoint": newest,
        "newest_checkpoint_age_seconds": age_seconds(modified.get(f"{prefix}checkpoint-{newest}/{TRAINER_STATE}"), now)
        if newest else None,
        "steps_per_minute": rate, "eta_seconds": eta_seconds(step, max_steps, rate),
        "trainer": newest_steps[0] if newest_steps[1] else None,
        "lease": lease, "object_keys": keys,
    }
    if with_event_logs:
        result["event_logs"] = {name: agent_events(text) for name, text in texts.items()}
    return result


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", required=True),
        lease_key=dict(type="str", no_log=False),
        rate_window=dict(type="float", default=300.0),
        event_logs=dict(type="bool", default=False),
    ), supports_check_mode=True)
    module.require_region()
    p = module.params
    module.exit_json(changed=False, **training_info(module, p["bucket"], p["prefix"], p["lease_key"],
                                                      p["rate_window"], p["event_logs"]))


if __name__ == "__main__":
    main()
