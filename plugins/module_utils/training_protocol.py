"""The contract between the training agent and the controller: the names they both read and write.

The agent (roles/train_service/files/train_agent/) writes these files, objects and log lines; the
playbooks, their filters and alicloud_training_info read them. This module is their one definition:
the agent's package holds it as `train_agent/protocol.py` (a link to this file, installed with the
agent), the controller imports it from module_utils. Standard library only, no imports of either side;
tests/unit/test_training_protocol.py fails when one of these values is written anywhere else.
"""

from __future__ import annotations

import re

# --- On the instance: the agent's logs, where the recipe's train.sh writes them.
LOG_DIR = "/root/train-service-log"
TRAIN_LOG = "train.log"
ERROR_LOG = "train_error.log"

# --- Under the output prefix (the bucket's output/, mounted at /mnt/oss-data/output).
# Written into each checkpoint once its save is complete and checked (sizes and sha256 of its files).
MANIFEST_NAME = "train_agent_manifest.json"
# Written when training has reached its last step.
COMPLETE_MARKER = "train_agent_complete.json"
# Each instance's event log: <EVENTS_DIR>/<instance id>.jsonl, one JSON object a line.
EVENTS_DIR = "train_agent_events"
# Hugging Face Trainer's state file, saved last in a checkpoint.
TRAINER_STATE = "trainer_state.json"


class Event:
    """The `event` of an event log entry ({"time": <epoch seconds>, "event": <kind>, ...})."""

    START = "start"  # the agent started (with the machine's boot and the bucket's mount times)
    SWIFT = "swift"  # `swift sft` started
    LOADED = "loaded"  # the trainer loaded the model and data (a successor waiting for the lease)
    LEASE = "lease"  # the lease taken
    RESUME = "resume"  # the checkpoint chosen (step, validation_seconds)
    STEP = "step"  # a training step ended (the trainer's own clock)
    SAVE = "save"  # a checkpoint saved (the trainer's own clock)
    STOP = "stop"  # a graceful stop requested (reason)
    HANDED_OVER = "handed_over"  # the lease given to a loaded successor
    COMPLETE = "complete"  # the last step reached
    NOTIFIED = "notified"  # the end reported (CloudMonitor event, webhook)
    SCALED_TO_ZERO = "scaled_to_zero"  # the scaling group set to 0 instances
    RELEASED_SELF = "released_self"  # the instance released itself at the end
    EXIT = "exit"  # the agent exited (code)


# --- train.log: the lines the playbooks read.
# How a start chose its checkpoint.
RESUME_MARK = "newest valid checkpoint"
RESUME_RE = re.compile(RESUME_MARK + r": (?P<path>\S+) \(global step (?P<step>\d+)\)")
FRESH_MARK = "no valid checkpoint"
STOPPED_MARK = "stopped gracefully"
LEASE_MARK = "holding the training lease"
LEASE_WAIT_MARK = "waiting for the training lease"
# ms-swift's step lines, in train.log and logging.jsonl ({'loss': ..., 'global_step/max_steps': '7/150'}).
STEP_KEY = "global_step/max_steps"
STEP_RE = re.compile(r"""['"]""" + STEP_KEY + r"""['"]: ['"](?P<step>\d+)/(?P<max>\d+)['"]""")

# --- The trainer's plugin (the agent's ms-swift callbacks) and the agent: what the one prints and the
# other reads, and the go file the agent writes for a successor that has loaded.
GO_FILE_ENV = "TRAIN_AGENT_GO_FILE"
READY_MARK = "train-agent-handover: loaded, waiting for the agent's go"
CLOCK_MARK = "train-agent-clock:"
CLOCK_RE = re.compile(re.escape(CLOCK_MARK) + r" (?P<event>step|save) (?P<step>\d+) at (?P<time>\d+(?:\.\d+)?)")
STOP_MARK = "train-agent-stop:"
# ms-swift 4's graceful_exit callback (swift/utils/shutdown_manager.py) stops at the end of a step, after a
# save, when this file exists.
SWIFT_STOP_FILE = "/tmp/stop"
