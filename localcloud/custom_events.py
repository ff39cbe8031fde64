"""The records of CloudMonitor custom events (PutCustomEvent): what the instances and tools reported.

This module owns the `custom_event` record, keyed by its Id. Each event keeps the fields CloudMonitor
gives back (Id, Name, GroupId, Content, Time in Unix milliseconds, as reported or as received) and,
for localcloud's own views (`localcloud events`), when it arrived on the virtual clock.
"""

from __future__ import annotations

from typing import Any

from .store import Kind, Store

Doc = dict[str, Any]

CUSTOM_EVENT = Kind("custom_event", "Id")
# The fields DescribeCustomEventAttribute answers with.
API_FIELDS = ("Id", "Name", "GroupId", "Content", "Time")


def record(store: Store, event: Doc) -> Doc:
    return CUSTOM_EVENT.save(store, event)


def all_events(store: Store) -> list[Doc]:
    """Every event, oldest first."""
    return sorted(CUSTOM_EVENT.all(store), key=lambda e: (int(e["Time"]), int(e["Id"])))


def next_id(store: Store) -> str:
    """A new event id (CloudMonitor's are decimal numbers)."""
    with store.transaction():
        number = int(store.kv_get("custom_event_seq", 0)) + 1
        store.kv_put("custom_event_seq", number)
    return str(number)
