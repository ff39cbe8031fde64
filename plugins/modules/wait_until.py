#!/usr/bin/python
# The documentation of the action plugin plugins/action/wait_until.py, which does the work on the controller.
from __future__ import annotations

DOCUMENTATION = r"""
module: wait_until
short_description: Run a module until a condition holds, showing its progress as it goes
description:
  - Runs O(module) with O(module_args) every O(delay) seconds until O(until) is true, for at most
    O(timeout) seconds, and returns the last result once - instead of a task C(until) loop's
    C(FAILED - RETRYING) line per attempt, it shows O(progress) (C(host [seconds waited] progress)).
  - On a terminal it is one line, drawn again in place at every poll and finished before anything else
    prints; where the output is not a terminal (a pipe, a file, CI) it prints a line each time the
    progress changes. See O(in_place).
  - O(until) and O(progress) are expressions (no C({{ }})) evaluated at every poll with C(result), the
    module's result. A poll whose module fails is not the end (an instance not reachable yet).
  - Gives up after O(timeout) with what it waited for (O(what)) and the last progress it saw.
  - The module gets the play's C(module_defaults) and runs where the task runs (C(delegate_to) too).
options:
  module:
    description: The module to poll.
    type: str
    required: true
  module_args:
    description: Its arguments.
    type: dict
    default: {}
  until:
    description: The expression that ends the wait, on C(result).
    type: str
    required: true
  progress:
    description: The expression that says how far the wait is, on C(result).
    type: str
  what:
    description: What the wait is for, in the message when it gives up.
    type: str
  timeout:
    description: Seconds to wait at most.
    type: float
    default: 600
  delay:
    description: Seconds between two polls.
    type: float
    default: 3
  in_place:
    description:
      - V(true) draws the progress as one line redrawn in place, V(false) prints a line per change.
      - Omitted, it is drawn in place when C(ansible-playbook) prints on a terminal (and C(TERM) is not
        V(dumb)), a single host runs the task (or it is C(run_once)) and the verbosity is below C(-vv)
        (several hosts' lines, or the connection's messages, would come between the redraws).
      - The log file (C(log_path)) gets a line per change either way.
    type: bool
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Wait for a checkpoint after step 40
  spotfirst.finetune.wait_until:
    module: spotfirst.finetune.alicloud_training_info
    module_args: {bucket: ess-lora-deepseek7b-data, prefix: output/}
    until: result.newest_checkpoint > 40 or result.complete
    progress: "'step %s/%s, newest checkpoint %s' % (result.step, result.max_steps, result.newest_checkpoint)"
    what: a checkpoint after step 40
    timeout: 1800
"""

RETURN = r"""
waited:
  description: Seconds waited.
  returned: always
  type: float
progress:
  description: The values of O(progress) as it changed, in order (the lines printed where the output is not a
    terminal).
  returned: always
  type: list
  elements: str
"""
