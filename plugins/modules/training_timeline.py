#!/usr/bin/python
# The documentation of the action plugin plugins/action/training_timeline.py, which does the work on the controller.
from __future__ import annotations

DOCUMENTATION = r"""
module: training_timeline
short_description: Draw a training's timeline to a PNG (matplotlib, on the controller)
description:
  - Draws, over one time axis, a bar per training instance coloured by charge type and labelled with
    its zone, the interruptions with their cause, the training step over time, and the cost paid so
    far against the same instance time at the pay-as-you-go price.
  - O(data) is what the P(spotfirst.finetune.chaos_timeline#filter) and P(spotfirst.finetune.status_timeline#filter)
    filters give. The picture is replaced whole
    (written aside, then renamed). Writing it is not a change of the cloud, so the task reports no
    change.
options:
  data:
    description: The timeline (C(bars), C(steps), C(interruptions), C(cost), C(origin), C(clock)).
    type: dict
    required: true
  path:
    description: Where the PNG goes.
    type: path
    required: true
  title:
    description: The picture's title.
    type: str
    default: Training timeline
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Draw the timeline
  spotfirst.finetune.training_timeline:
    data: >-
      {{ scaling_group | spotfirst.finetune.status_timeline(training, prices, bill, now().timestamp(), settings) }}
    path: .cache/timeline.png
"""

RETURN = r"""
path:
  description: The PNG written.
  returned: always
  type: str
bars:
  description: How many instance bars it drew.
  returned: always
  type: int
interruptions:
  description: How many interruptions it marked.
  returned: always
  type: int
steps:
  description: How many training steps it plotted.
  returned: always
  type: int
"""
