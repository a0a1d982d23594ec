"""WebSockets: live object updates for clients, and pushes from data sources.

`/ws/{client_id}`: reads are public, so a token is optional (`?token=`; a bad one closes
with 4401). The client sends `{"type": "subscribe", "types": [...], "tags": ["k=v"],
"bbox": [minx, miny, maxx, maxy], "snapshot": true}` (any time, again to change it) and
gets `subscribed`, optionally a `snapshot`, then the matching `object.*` events; a
`{"type": "ping"}` follows 20 s of silence. Any other message (another type, or text that is
not JSON) is answered as in the seed: `{"type": "response", "content": "Message received"}`;
a subscribe message with bad fields gets `{"type": "error", "message": ...}`. With
`"batch": true` in the subscribe message, events that arrive together (one ingested batch)
come as one `{"type": "batch", "events": [...]}` frame: the way to follow a busy feed. A
client that cannot keep up is closed with 1013 (others are unaffected).

`/ws/data-source/{source_id}?token=`: the source's token (or an admin's). Each text
message is a batch (OSM JSON or a FeatureCollection, optional `batch_id`) answered by an
`ack` with the batch's counts, or a `nack` with the error. Frames above 2 MiB close the
connection with 1009. Close codes 4401/4403/4404/4409 mirror the HTTP statuses.
"""

from __future__ import annotations

import json
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Hashable
from typing import Any, cast

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.osm import service
from worldbase.apps.osm.dependencies import authorize_push
from worldbase.apps.osm.events import (
    CHANNEL,
    ClientFilter,
    object_json,
    publish_changes,
    unpack,
)
from worldbase.apps.osm.exceptions import SourceInactive
from worldbase.apps.osm.parsing import OSM_TYPES
from worldbase.core.auth import authenticate_token
from worldbase.core.errors import DomainError
from worldbase.core.live_socket import close_refused, serve_websocket
from worldbase.core.realtime import Event, Subscription
from worldbase.core.services import services_of

log = logging.getLogger("worldbase.osm")

router = APIRouter()

MAX_FRAME_BYTES = 2 * 1024 * 1024
SNAPSHOT_LIMIT = 1000
MAX_QUEUE = 256
RECEIVED = {"type": "response", "content": "Message received"}


# The events of a hub message that a filter matches, shared by the sockets with the same
# filter: every local subscriber receives the same message object, and a thousand sockets
# following one feed should cost one filtering pass per message, not a thousand. An entry
# holds its message, so the message's id cannot be reused while it is cached.
_MATCHED: OrderedDict[tuple[int, Hashable], tuple[Event, list[Event]]] = OrderedDict()
_MATCHED_MAX = 1024


def matching_events(message: Event, state: ClientFilter) -> list[Event]:
    key = (id(message), state.key())
    cached = _MATCHED.get(key)
    if cached is not None and cached[0] is message:
        return cached[1]
    matched = [event for event in unpack(message) if state.matches(event)]
    _MATCHED[key] = (message, matched)
    if len(_MATCHED) > _MATCHED_MAX:
        _MATCHED.popitem(last=False)
    return matched


class FilteredSubscription:
    """A hub subscription that yields, one by one, the object events (unpacked from the
    published batches) that the client's filter matches."""

    def __init__(self, inner: Subscription, state: ClientFilter):
        self.inner = inner
        self.state = state
        self.pending: deque[Event] = deque()

    def __aiter__(self) -> FilteredSubscription:
        return self

    def _matching(self, message: Event) -> list[Event]:
        return matching_events(message, self.state)

    async def __anext__(self) -> Event:
        while not self.pending:
            self.pending.extend(self._matching(await anext(self.inner)))
        return self.pending.popleft()

    def pop_ready(self) -> list[Event]:
        ready = list(self.pending)
        self.pending.clear()
        for message in self.inner.pop_ready():
            ready.extend(self._matching(message))
        return ready

    def close(self) -> None:
        self.inner.close()


def parse_subscribe(message: dict[str, Any]) -> ClientFilter:
    types = message.get("types") or []
    if not isinstance(types, list) or any(t not in OSM_TYPES for t in types):
        raise ValueError("'types' must be a list of node, way, relation")
    tags = message.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags) or len(tags) > 100:
        raise ValueError("'tags' must be a list of 'key' or 'key=value' strings")
    bbox = message.get("bbox")
    box: tuple[float, float, float, float] | None = None
    if bbox is not None:
        ok = isinstance(bbox, list) and len(bbox) == 4
        ok = ok and all(isinstance(v, int | float) and math.isfinite(v) for v in bbox)
        if not ok or not (bbox[0] <= bbox[2] and bbox[1] <= bbox[3]):
            raise ValueError("'bbox' must be [minx, miny, maxx, maxy]")
        box = (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
    parsed_tags = []
    for tag in tags:
        try:
            parsed_tags.append(service.parse_tag_filter(tag))
        except DomainError as exc:
            raise ValueError(exc.message) from None
    batch = message.get("batch", False)
    if not isinstance(batch, bool):
        raise ValueError("'batch' must be true or false")
    return ClientFilter(types=set(types), tags=parsed_tags, bbox=box, active=True, batch=batch)


async def snapshot(session: AsyncSession, state: ClientFilter) -> dict[str, Any]:
    filters = service.ObjectFilters(
        type=None, tags=state.tags, bbox=state.bbox, include_deleted=False
    )
    objects: list[dict[str, Any]] = []
    total = 0
    types: list[str | None] = [*sorted(state.types)] or [None]
    for typ in types:
        filters.type = typ
        items, count = (
            await service.list_objects(
                session, filters=filters, limit=SNAPSHOT_LIMIT - len(objects), offset=0
            )
            if len(objects) < SNAPSHOT_LIMIT
            else ([], 0)
        )
        objects.extend(object_json(obj) for obj in items)
        total += count
    return {
        "type": "snapshot",
        "objects": objects,
        "total": total,
        "truncated": total > len(objects),
    }


@router.websocket("/ws/{client_id}")
async def object_updates(websocket: WebSocket, client_id: str, token: str | None = None) -> None:
    await websocket.accept()
    services = services_of(websocket)
    if token:
        try:
            async with services.db.sessionmaker() as session:
                await authenticate_token(session, token=token, settings=services.settings)
        except DomainError as exc:
            await close_refused(websocket, exc)
            return
    state = ClientFilter()
    subscription = services.hub.subscribe(CHANNEL, max_queue=MAX_QUEUE)
    await subscription.ready(within=5)

    async def on_message(message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "unsubscribe":
            state.active = False
            await websocket.send_json({"type": "unsubscribed"})
            return
        if kind != "subscribe":
            # The seed's answer to anything else (also text that is not JSON).
            await websocket.send_json(RECEIVED)
            return
        try:
            new = parse_subscribe(message)
        except ValueError as exc:
            await websocket.send_json({"type": "error", "message": str(exc)})
            return
        state.types, state.tags, state.bbox, state.active = new.types, new.tags, new.bbox, True
        state.batch = new.batch
        await websocket.send_json(
            {
                "type": "subscribed",
                "types": sorted(state.types),
                "tags": message.get("tags") or [],
                "bbox": message.get("bbox"),
                "batch": state.batch,
            }
        )
        if message.get("snapshot"):
            async with services.db.sessionmaker() as session:
                await websocket.send_text(json.dumps(await snapshot(session, state)))

    async def on_undecodable(_text: str) -> None:
        await websocket.send_json(RECEIVED)

    await serve_websocket(
        websocket,
        cast(Subscription, FilteredSubscription(subscription, state)),
        initial={"type": "welcome", "client_id": client_id},
        on_message=on_message,
        on_undecodable=on_undecodable,
        batch=lambda: state.batch,
    )


@router.websocket("/ws/data-source/{source_id}")
async def data_source_push(websocket: WebSocket, source_id: str, token: str | None = None) -> None:
    await websocket.accept()
    services = services_of(websocket)
    try:
        async with services.db.sessionmaker() as session:
            source = await service.get_source_or_raise(session, source_id=source_id[:36])
            await authorize_push(source, token, session, websocket)
            if not source.is_active:
                raise SourceInactive("Data source is inactive")
    except DomainError as exc:
        await close_refused(websocket, exc)
        return
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None and message.get("bytes") is not None:
                text = message["bytes"].decode("utf-8", errors="replace")
            if text is None:
                continue
            if len(text) > MAX_FRAME_BYTES:
                await websocket.send_json(
                    {"type": "error", "code": 413, "message": "frame too large (max 2 MiB)"}
                )
                await websocket.close(code=1009)
                return
            if not await _push_batch(websocket, source_id, text):
                return
    except (WebSocketDisconnect, RuntimeError):
        return


async def _push_batch(websocket: WebSocket, source_id: str, text: str) -> bool:
    """Handle one batch; False when the connection was closed."""
    services = services_of(websocket)
    batch_id: Any = None
    try:
        payload = json.loads(text)
    except ValueError:
        await websocket.send_json(
            {"type": "nack", "batch_id": None, "code": 400, "message": "not JSON"}
        )
        return True
    if isinstance(payload, dict):
        batch_id = payload.pop("batch_id", None)
        if isinstance(payload.get("data"), dict):
            payload = payload["data"]
    try:
        async with services.db.sessionmaker() as session:
            source = await service.get_source_or_raise(session, source_id=source_id)
            report = await service.ingest_payload(
                session,
                source=source,
                payload=payload,
                channel="websocket",
                max_vertices=services.settings.worldbase_max_feature_vertices,
            )
    except DomainError as exc:
        await websocket.send_json(
            {
                "type": "nack",
                "batch_id": batch_id,
                "code": exc.status_code,
                "message": exc.message,
                "detail": exc.detail,
            }
        )
        if isinstance(exc, SourceInactive):
            await websocket.close(code=4409, reason="Data source is inactive")
            return False
        return True
    await publish_changes(services.hub, report)
    await websocket.send_json({"type": "ack", "batch_id": batch_id, **report.summary()})
    return True
