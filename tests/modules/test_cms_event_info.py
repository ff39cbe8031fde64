"""alicloud_cms_event_info: what was reported to CloudMonitor, read back through the official SDK."""

from __future__ import annotations

import json
import time

from alibabacloud_cms20190101 import models as cms_models

from ..localcloud.oss_support import unique
from .conftest import task


def test_events_of_one_name_come_back_oldest_first_with_their_json_parsed(playbook, localcloud) -> None:
    name = unique("training")
    now_ms = int(time.time() * 1000)
    infos = [cms_models.PutCustomEventRequestEventInfo(event_name=name, content=content, time=str(when))
             for content, when in ((json.dumps({"status": "complete", "global_step": 300}), now_ms),
                                   ("not json", now_ms - 5000), ("long ago", now_ms - 3_600_000))]
    localcloud.client("cms").put_custom_event(cms_models.PutCustomEventRequest(event_info=infos))
    run = playbook([
        task("since", "alicloud_cms_event_info", {"name": name, "since": now_ms / 1000 - 60}, register="since"),
        task("words", "alicloud_cms_event_info", {"name": name, "search_keywords": "complete"}),
        task("other name", "alicloud_cms_event_info", {"name": unique("nobody")}),
    ])
    assert run.returncode == 0, run.output[-3000:]
    events = run["since"]["events"]
    assert [e["content"] for e in events] == ["not json", events[1]["content"]]
    assert events[1]["result"] == {"status": "complete", "global_step": 300} and events[0]["result"] == {}
    assert events[1]["time"] == now_ms / 1000 and not run["since"]["changed"]
    assert [e["result"]["status"] for e in run["words"]["events"]] == ["complete"]
    assert run["other name"]["events"] == []
