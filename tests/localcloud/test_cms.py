"""CloudMonitor custom events through the official SDK: report, read back, RAM authorization."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from alibabacloud_cms20190101 import models as cms_models

from localcloud.products.cms import event_time_ms

from .ecs_support import api_error, unique
from .test_ram_sts import allow, assume, attach, make_policy, make_role, ram, sts, uid  # noqa: F401 - fixtures


@pytest.fixture
def cms(localcloud: Any) -> Any:
    return localcloud.client("cms")


def put(client: Any, *events: dict[str, str]) -> Any:
    infos = [cms_models.PutCustomEventRequestEventInfo(**event) for event in events]
    return client.put_custom_event(cms_models.PutCustomEventRequest(event_info=infos)).body


def describe(client: Any, **fields: Any) -> list[Any]:
    body = client.describe_custom_event_attribute(cms_models.DescribeCustomEventAttributeRequest(**fields)).body
    assert body.code == "200" and body.success == "true"
    return body.custom_events.custom_event if body.custom_events else []


def test_put_custom_event_is_read_back_by_name_with_its_time_and_group(cms: Any) -> None:
    name = unique("training-complete")
    answer = put(cms, {"event_name": name, "content": json.dumps({"step": 300}), "time": "1552199984000"},
                 {"event_name": name, "content": "second", "group_id": "12345"})
    assert answer.code == "200"
    events = describe(cms, name=name)
    assert (events[0].content, events[0].group_id, events[0].time) == ('{"step": 300}', "0", "1552199984000")
    assert events[1].group_id == "12345" and int(events[1].time) > 1552199984000
    assert len({e.id for e in events}) == 2
    assert [e.content for e in describe(cms, event_id=events[1].id)] == ["second"]
    assert [e.content for e in describe(cms, name=name, group_id="12345")] == ["second"]


def test_describe_filters_by_keywords_time_and_pages(cms: Any) -> None:
    name = unique("kw")
    put(cms, *({"event_name": name, "content": text, "time": str(1_700_000_000_000 + i)}
               for i, text in enumerate(["disk full", "gpu lost", "disk slow and gpu hot"])))
    assert [e.content for e in describe(cms, name=name, search_keywords="disk and gpu")] == ["disk slow and gpu hot"]
    assert len(describe(cms, name=name, search_keywords="full or lost")) == 2
    assert [e.content for e in describe(cms, name=name, start_time="1700000000001", end_time="1700000000001")] == [
        "gpu lost"]
    assert [e.content for e in describe(cms, name=name, page_size=1, page_number=3)] == ["disk slow and gpu hot"]


def test_put_custom_event_needs_a_name_and_content(cms: Any) -> None:
    err = api_error(cms.put_custom_event, cms_models.PutCustomEventRequest(
        event_info=[cms_models.PutCustomEventRequestEventInfo(event_name="x")]))
    assert err.code == "MissingParameter.EventInfo.Content"
    err = api_error(cms.put_custom_event, cms_models.PutCustomEventRequest(
        event_info=[cms_models.PutCustomEventRequestEventInfo(content="x", event_name="n", time="yesterday")]))
    assert err.code == "InvalidParameter.EventInfo.Time"


def test_event_time_takes_cloudmonitors_format_and_milliseconds() -> None:
    assert event_time_ms("20171013T170923.456+0800", 0) == 1507885763456
    assert event_time_ms("20171013T090923Z", 0) == 1507885763000
    assert event_time_ms("1552199984000", 0) == 1552199984000
    assert event_time_ms(None, 12.5) == 12500


def test_a_role_reports_events_only_with_cms_put_custom_event(localcloud: Any, ram: Any, sts: Any,  # noqa: F811
                                                             make_role: Any, make_policy: Any, uid: str) -> None:  # noqa: F811
    role = make_role()
    attach(ram, role.role_name, make_policy(allow("cms:PutCustomEvent")))
    creds = assume(sts, role.arn).credentials
    client = localcloud.client("cms", creds.access_key_id, creds.access_key_secret, creds.security_token)
    name = unique("from-role")
    put(client, {"event_name": name, "content": "done"})
    err = api_error(client.describe_custom_event_attribute, cms_models.DescribeCustomEventAttributeRequest(name=name))
    assert err.code.startswith("NoPermission") or err.statusCode == 403, err
    stranger = make_role()
    attach(ram, stranger.role_name, make_policy(allow("ecs:DescribeInstances")))
    other = assume(sts, stranger.arn).credentials
    denied = localcloud.client("cms", other.access_key_id, other.access_key_secret, other.security_token)
    assert api_error(put, denied, {"event_name": name, "content": "x"}).statusCode == 403
    assert [e.content for e in describe(localcloud.client("cms"), name=name)] == ["done"]
    listed = subprocess.run([sys.executable, "-m", "localcloud.cli", "--state-dir", str(localcloud.state_dir),
                             "events", "--json"], capture_output=True, text=True, check=True)
    mine = [e for e in json.loads(listed.stdout)["events"] if e["Name"] == name]
    assert [e["Reporter"] for e in mine] == [f"acs:ram::{uid}:assumed-role/{role.role_name}/tests"]
