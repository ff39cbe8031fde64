"""CloudMonitor 2019-01-01: custom events (PutCustomEvent, DescribeCustomEventAttribute).

What the training agent reports when training completes or fails, and what the playbooks read back.
As CloudMonitor: up to 50 events a call, each with a name and content (required), an application
group (default "0") and a time (`yyyyMMddTHHmmss.SSSZ` or Unix milliseconds; default: when it is
received); answers carry `Code: "200"`. Neither action has resource-level permissions: RAM
authorizes them on `*`. Events are kept for the life of the state directory (CloudMonitor keeps
them for a limited time).
"""

from __future__ import annotations

import datetime
import re
import time
from typing import TYPE_CHECKING, Any

from .. import custom_events
from ..errors import ApiError, invalid
from ..registry import Request, action

if TYPE_CHECKING:
    from ..cloud import Cloud

MAX_EVENTS = 50
DEFAULT_PAGE_SIZE = 50
_CMS_TIME = re.compile(r"^(\d{8}T\d{6})(?:\.(\d{1,3}))?([+-]\d{4}|Z)?$")


def _ok(**fields: Any) -> dict[str, Any]:
    return {"Code": "200", "Message": "success", "Success": "true", **fields}


def event_time_ms(text: str | None, now: float) -> int:
    """An event's time in Unix milliseconds: `20171013T170923.456+0800`, Unix milliseconds, or now."""
    if not text:
        return int(now * 1000)
    if text.isdigit():
        return int(text)
    match = _CMS_TIME.match(text)
    if match is None:
        raise invalid("EventInfo.Time", "Give yyyyMMddTHHmmss.SSSZ (20171013T170923.456+0800) or Unix "
                      "milliseconds (1552199984000).")
    zone = match.group(3) or "+0800"
    moment = datetime.datetime.strptime(match.group(1) + ("+0000" if zone == "Z" else zone), "%Y%m%dT%H%M%S%z")
    return int(moment.timestamp() * 1000) + int((match.group(2) or "0").ljust(3, "0"))


@action("cms", "PutCustomEvent")
def put_custom_event(cloud: Cloud, req: Request) -> dict[str, Any]:
    infos = req.params.objects("EventInfo")
    if not infos:
        raise ApiError("MissingParameter.EventInfo", "The input parameter \"EventInfo\" that is mandatory for "
                       "processing this request is not supplied.")
    if len(infos) > MAX_EVENTS:
        raise invalid("EventInfo", f"At most {MAX_EVENTS} events per call; {len(infos)} were given.")
    now = time.time()
    events = []
    for index, info in enumerate(infos, 1):
        for name in ("EventName", "Content"):
            if not info.get(name):
                raise ApiError(f"MissingParameter.EventInfo.{name}", f"The input parameter \"EventInfo.{index}."
                               f"{name}\" that is mandatory for processing this request is not supplied.")
        events.append({"Name": info["EventName"], "Content": info["Content"], "GroupId": info.get("GroupId") or "0",
                       "Time": str(event_time_ms(info.get("Time"), now))})
    with cloud.store.transaction():
        for event in events:
            custom_events.record(cloud.store, {"Id": custom_events.next_id(cloud.store), **event,
                                               "ReceivedVirtual": cloud.clock.now(),
                                               "Reporter": req.principal.arn})
    return _ok()


def _matches(event: dict[str, Any], keywords: str) -> bool:
    """CloudMonitor's SearchKeywords: `a and b` (both in the content), `a or b` (either), else one word."""
    content = event["Content"]
    if " or " in keywords:
        return any(word.strip() in content for word in keywords.split(" or "))
    return all(word.strip() in content for word in keywords.split(" and "))


@action("cms", "DescribeCustomEventAttribute")
def describe_custom_event_attribute(cloud: Cloud, req: Request) -> dict[str, Any]:
    params = req.params
    name, event_id, group_id = params.str("Name"), params.str("EventId"), params.str("GroupId")
    keywords = params.str("SearchKeywords")
    start, end = params.int("StartTime", minimum=0), params.int("EndTime", minimum=0)
    page_number = params.int("PageNumber", 1, minimum=1)
    page_size = params.int("PageSize", DEFAULT_PAGE_SIZE, minimum=1, maximum=1000)
    found = [e for e in custom_events.all_events(cloud.store)
             if (name is None or e["Name"] == name) and (event_id is None or e["Id"] == event_id)
             and (group_id is None or e["GroupId"] == group_id) and (not keywords or _matches(e, keywords))
             and (start is None or int(e["Time"]) >= start) and (end is None or int(e["Time"]) <= end)]
    page = found[(page_number - 1) * page_size:page_number * page_size]
    return _ok(CustomEvents={"CustomEvent": [{k: e[k] for k in custom_events.API_FIELDS} for e in page]})
