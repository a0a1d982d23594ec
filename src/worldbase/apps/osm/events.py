"""Live object events: what is published on the hub, and each client's filter.

Every change becomes `{"type": "object.created" | "object.modified" | "object.deleted",
"object": {...}, "bbox": [...]}`; the changes of one ingested batch are published together
on `osm:objects` as `{"type": "batch", "events": [...]}` (up to `PUBLISH_BATCH` each), so a
busy feed costs the hub one queue entry per subscriber per batch, not per object, and a
large batch cannot overflow a subscriber's queue by itself. The hub carries it to every
worker, and each WebSocket keeps only the events its subscription matches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from worldbase.apps.osm.ingest import IngestReport
from worldbase.apps.osm.models import OSMObject
from worldbase.apps.osm.schemas import OSMObjectRead
from worldbase.core.realtime import Hub

log = logging.getLogger("worldbase.osm")

CHANNEL = "osm:objects"
PUBLISH_BATCH = 500  # events per hub message


def object_json(obj: OSMObject) -> dict[str, Any]:
    data: dict[str, Any] = OSMObjectRead.model_validate(obj).model_dump(mode="json")
    return data


def object_event(kind: str, obj: OSMObject) -> dict[str, Any]:
    bbox = None if obj.geom is None or obj.geom.is_empty else list(obj.geom.bounds)
    return {"type": kind, "object": object_json(obj), "bbox": bbox}


def change_events(report: IngestReport) -> list[dict[str, Any]]:
    return [object_event(kind, obj) for kind, obj in report.changes]


def hub_messages(report: IngestReport) -> list[dict[str, Any]]:
    events = change_events(report)
    return [
        {"type": "batch", "events": events[i : i + PUBLISH_BATCH]}
        for i in range(0, len(events), PUBLISH_BATCH)
    ]


def unpack(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The object events of a hub message (a batch, or a single event)."""
    if message.get("type") == "batch":
        return list(message.get("events") or [])
    return [message]


async def publish_changes(hub: Hub, report: IngestReport) -> None:
    for message in hub_messages(report):
        try:
            await hub.publish(CHANNEL, message)
        except Exception:  # live updates are best effort; the tables are the truth
            log.warning("could not publish an object event", exc_info=True)
            return


def publish_changes_threadsafe(
    publish: Callable[[str, dict[str, Any]], None], report: IngestReport
) -> None:
    """From job worker threads (`publish` is the job context's)."""
    for message in hub_messages(report):
        try:
            publish(CHANNEL, message)
        except Exception:
            log.warning("could not publish an object event", exc_info=True)
            return


@dataclass
class ClientFilter:
    """One client's subscription: every list is OR, the three criteria are AND."""

    types: set[str] = field(default_factory=set)
    tags: list[tuple[str, str | None]] = field(default_factory=list)
    bbox: tuple[float, float, float, float] | None = None
    active: bool = False  # nothing is sent before the first subscribe message
    batch: bool = False  # events that arrive together go out as one frame

    def key(self) -> Hashable:
        """Equal for filters that match the same events."""
        return (self.active, frozenset(self.types), tuple(self.tags), self.bbox)

    def matches(self, event: dict[str, Any]) -> bool:
        if not self.active:
            return False
        obj = event.get("object") or {}
        if self.types and obj.get("type") not in self.types:
            return False
        if self.tags:
            tags = obj.get("tags") or {}
            if not any(k in tags and (v is None or tags[k] == v) for k, v in self.tags):
                return False
        if self.bbox is not None:
            box = event.get("bbox")
            if box is None:
                return False
            minx, miny, maxx, maxy = self.bbox
            if box[2] < minx or box[0] > maxx or box[3] < miny or box[1] > maxy:
                return False
        return True
