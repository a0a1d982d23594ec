"""The fast lane: a small in-process cache, in front of the router, for responses that are
the same for everyone — public tiles.

Why: a tile already in the tile cache costs ~0.1 ms to look up but ~1.5 ms to reach through
FastAPI (routing over every app's routes, dependency resolution, query validation, the
response object). A hot public tile is asked for again and again with the very same URL,
so it can be answered before any of that, the way a micro-caching proxy would.

What gets in: only responses whose route asked for it (`offer(request, tags)`), to a GET,
with status 200 or 204, `Cache-Control: public`, at most `MAX_ENTRY_BYTES`. Routes offer
only what does not depend on who asks (a global layer's tiles, never a private one's), so
the key is the path and the query string alone. An entry lives for the response's
`max-age`, at most `WORLDBASE_FAST_LANE_TTL` seconds; the store is bounded in bytes
(`WORLDBASE_FAST_LANE_MB`, 0 turns the lane off) and drops the least recently used.

Staleness: whoever changes what a tile shows calls `invalidate(hub, tag)` after the commit:
this process drops the tag's entries at once and every other worker when the hub's message
arrives. A response being rendered while an invalidation happens is not kept, so a render
that read the old data cannot outlive the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worldbase.core.realtime import Hub

log = logging.getLogger("worldbase.fast_lane")

CHANNEL = "core:fast-lane"
SCOPE_KEY = "worldbase.fast_lane"
MAX_ENTRY_BYTES = 1024 * 1024
HIT_HEADER = (b"x-fast-lane", b"hit")
_MAX_AGE = re.compile(rb"max-age=(\d+)")


def offer(request: HTTPConnection, *tags: str) -> None:
    """Let the fast lane keep this request's response, invalidated by any of `tags`.

    Call it only when the response is the same whoever asks (and says `Cache-Control:
    public`); the lane keys on the URL alone.
    """
    request.scope[SCOPE_KEY] = tags


@dataclass(frozen=True)
class Entry:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes | None
    expires: float
    tags: tuple[str, ...]
    route: object


class FastLaneStore:
    """Entries by URL, bounded in bytes (least recently used out), indexed by tag."""

    def __init__(self, *, max_bytes: int, ttl: float) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.entries: OrderedDict[bytes, Entry] = OrderedDict()
        self.by_tag: dict[str, set[bytes]] = {}
        self.size = 0
        # Bumped by every invalidation: a response rendered across one is not stored.
        self.generation = 0
        _STORES.add(self)

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.ttl > 0

    def get(self, key: bytes, now: float) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        return entry

    def put(self, key: bytes, entry: Entry) -> None:
        if len(entry.body) > min(MAX_ENTRY_BYTES, self.max_bytes):
            return
        self._drop(key)
        self.entries[key] = entry
        self.size += len(entry.body)
        for tag in entry.tags:
            self.by_tag.setdefault(tag, set()).add(key)
        while self.size > self.max_bytes and self.entries:
            self._drop(next(iter(self.entries)))

    def invalidate(self, tag: str) -> int:
        self.generation += 1
        keys = self.by_tag.pop(tag, set())
        for key in keys:
            self._drop(key)
        return len(keys)

    def clear(self) -> None:
        self.generation += 1
        self.entries.clear()
        self.by_tag.clear()
        self.size = 0

    def _drop(self, key: bytes) -> None:
        entry = self.entries.pop(key, None)
        if entry is None:
            return
        self.size -= len(entry.body)
        for tag in entry.tags:
            keys = self.by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.by_tag[tag]


# Every store of this process (one per app instance; tests build many apps).
_STORES: weakref.WeakSet[FastLaneStore] = weakref.WeakSet()


def invalidate_local(*tags: str) -> None:
    """Drop the entries of `tags` from every store of this process."""
    for store in list(_STORES):
        for tag in tags:
            store.invalidate(tag)


async def invalidate(hub: Hub, *tags: str) -> None:
    """Drop the entries of `tags` here at once and in every other worker through the hub.

    Call it after the change is committed. A hub outage is logged, not raised: the change
    is made, and other workers' entries still expire within the TTL.
    """
    invalidate_local(*tags)
    try:
        await hub.publish(CHANNEL, {"tags": list(tags)})
    except Exception:
        log.warning("could not publish a fast-lane invalidation", exc_info=True)


async def listen(hub: Hub) -> None:
    """Apply the invalidations other workers publish (runs for the app's lifetime)."""
    while True:
        try:
            async with hub.subscribe(CHANNEL, max_queue=10_000) as subscription:
                async for event in subscription:
                    tags = event.get("tags") if isinstance(event, dict) else None
                    if isinstance(tags, list):
                        invalidate_local(*(str(tag) for tag in tags))
            return  # the hub closed the subscription: it is stopping
        except asyncio.CancelledError:
            raise
        except Exception:
            # Fell behind or lost the hub: nothing is known about what changed meanwhile.
            log.warning("fast-lane invalidations interrupted; clearing", exc_info=True)
            for store in list(_STORES):
                store.clear()
            await asyncio.sleep(1.0)


class FastLaneMiddleware:
    """Answers GETs from the store; keeps the responses routes `offer`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, ttl: float) -> None:
        self.app = app
        self.store = FastLaneStore(max_bytes=max_bytes, ttl=ttl)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not self.store.enabled:
            await self.app(scope, receive, send)
            return
        key = scope["path"].encode() + b"?" + scope.get("query_string", b"")
        now = time.monotonic()
        entry = self.store.get(key, now)
        if entry is not None:
            scope["route"] = entry.route  # metrics label the hit with its route
            await self._answer(scope, send, entry)
            return
        generation = self.store.generation
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        tags = scope.get(SCOPE_KEY)
        if tags is None or start is None or start["status"] not in (200, 204):
            return
        if self.store.generation != generation:
            return  # something was invalidated while this was rendered
        headers = list(start.get("headers", []))
        cache_control = _header(headers, b"cache-control") or b""
        if b"public" not in cache_control:
            return
        max_age = _MAX_AGE.search(cache_control)
        ttl = min(self.store.ttl, float(max_age.group(1)) if max_age else self.store.ttl)
        if ttl <= 0:
            return
        entry = Entry(
            status=start["status"],
            headers=headers,
            body=b"".join(chunks),
            etag=_header(headers, b"etag"),
            expires=now + ttl,
            tags=tuple(tags),
            route=scope.get("route"),
        )
        self.store.put(key, entry)

    @staticmethod
    async def _answer(scope: Scope, send: Send, entry: Entry) -> None:
        status, body = entry.status, entry.body
        headers = [*entry.headers, HIT_HEADER]
        if entry.etag is not None and _matches(scope, entry.etag):
            status, body = 304, b""
            headers = [(k, v) for k, v in headers if k not in (b"content-length", b"content-type")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return bytes(value)
    return None


def _matches(scope: Scope, etag: bytes) -> bool:
    wanted = _header(scope.get("headers") or [], b"if-none-match")
    if wanted is None:
        return False
    candidates = {part.strip().removeprefix(b"W/") for part in wanted.split(b",")}
    return b"*" in candidates or etag.removeprefix(b"W/") in candidates


def start_listener(hub: Hub) -> asyncio.Task[None]:
    return asyncio.create_task(listen(hub), name="fast-lane-invalidations")


async def stop_listener(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
