#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_cms_event_info
short_description: CloudMonitor custom events of one name (what the training agent reported)
description:
  - Reads the custom events of one name (CloudMonitor 2019-01-01 DescribeCustomEventAttribute),
    newest last, with their content parsed when it is JSON (the training agent's results). Changes
    nothing.
options:
  name:
    description: The events' name.
    type: str
    required: true
  search_keywords:
    description: Only events whose content holds these words (C(a and b), C(a or b)).
    type: str
  since:
    description: Only events at or after this time (Unix seconds).
    type: float
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Read what the training agent reported
  alicloud_cms_event_info:
    name: ess-lora-deepseek7b-training
  register: reported

- name: Show the result of the last training
  ansible.builtin.debug:
    msg: "{{ (reported.events | last).result }}"
"""

RETURN = r"""
events:
  description: The events, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    id: {description: The event id., type: str}
    name: {description: The name., type: str}
    group_id: {description: The application group (C(0) for none)., type: str}
    time: {description: When it happened (Unix seconds)., type: float}
    content: {description: The content as reported., type: str}
    result: {description: The content parsed as JSON (empty when it is not JSON)., type: dict}
"""

import json  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402

PAGE_SIZE = 100


def parsed(content: str) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        name=dict(type="str", required=True),
        search_keywords=dict(type="str"),
        since=dict(type="float"),
    ))
    p = module.params
    module.check_region()
    query = {"Name": p["name"], "SearchKeywords": p["search_keywords"], "PageSize": PAGE_SIZE,
             "StartTime": str(int(p["since"] * 1000)) if p["since"] is not None else None}
    events: list[dict[str, Any]] = []
    page = 1
    while True:
        body = module.call("cms", "DescribeCustomEventAttribute", {**query, "PageNumber": page}) or {}
        batch = (body.get("CustomEvents") or {}).get("CustomEvent") or []
        events += [{"id": e.get("Id"), "name": e.get("Name"), "group_id": e.get("GroupId"),
                    "time": int(e.get("Time") or 0) / 1000, "content": e.get("Content", ""),
                    "result": parsed(e.get("Content", ""))} for e in batch]
        if len(batch) < PAGE_SIZE:
            break
        page += 1
    module.exit_json(changed=False, events=sorted(events, key=lambda e: (e["time"], int(e["id"] or 0))))


if __name__ == "__main__":
    main()
