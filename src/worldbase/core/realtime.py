"""The realtime hub: publish(channel, event) / subscribe(*channels), in-process or over Redis.

`MemoryHub` serves one process (embedded mode). `RedisHub` carries events through Redis
pub/sub so a WebSocket held by worker A sees an event published on worker B. Each
subscriber has a bounded queue; one that falls behind is dropped (its iterator raises
`SubscriberTooSlow`) instead of slowing the publishers or the other subscribers.

Events are JSON objects; both hubs round-trip them through JSON so embedded and served
deployments deliver exactly the same values. `worldbase.core.live_socket` streams a
subscription to a WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

from worldbase.core.outages import REDIS_DOWN, OutageLog
from worldbase.settings import Settings

log = logging.getLogger("worldbase.realtime")

Event = dict[str, Any]
DEFAULT_MAX_QUEUE = 256
ACCESS_CHANGED = "access.changed"  # a control event: re-check access now (never forwarded)


class SubscriberTooSlow(Exception):
    """The subscriber's queue overflowed; it was dropped and must reconnect."""


_CLOSED = object()
_DROPPED = object()


class Subscription:
    """An async iterator of the events published on some channels; `close()` ends it."""

    def __init__(
        self,
        hub: _FanoutHub,
        channels: tuple[str, ...],
        max_queue: int,
    ):
        self.hub = hub
        self.channels = channels
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max_queue + 1)
        self.max_queue = max_queue
        self.closed = False
        self.dropped = False

    async def ready(self, within: float | None = None) -> None:
        """Wait until events published from now on are certain to be delivered, or at most
        `within` seconds (later events are then delivered once the hub is connected)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.hub.wait_ready(), timeout=within)

    def _offer(self, event: Event) -> None:
        if self.closed:
            return
        # One slot is kept free for the end marker, so a full queue can still be ended.
        if self._queue.qsize() >= self.max_queue:
            self.dropped = True
            self._end(_DROPPED)
            log.warning("dropped a subscriber that fell behind on %s", ",".join(self.channels))
            return
        self._queue.put_nowait(event)

    def _end(self, marker: object) -> None:
        if self.closed:
            return
        self.closed = True
        self.hub._remove(self)
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(marker)

    def close(self) -> None:
        self._end(_CLOSED)

    def pop_ready(self) -> list[Event]:
        """The events already queued, without waiting (an end marker stays for `__anext__`)."""
        events: list[Event] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is _DROPPED or item is _CLOSED:
                self._queue.put_nowait(item)  # markers are last: nothing queues after them
                break
            events.append(item)
        return events

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if item is _DROPPED:
            self._queue.put_nowait(_DROPPED)  # stays ended for any later call
            raise SubscriberTooSlow(",".join(self.channels))
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)
            raise StopAsyncIteration
        event: Event = item
        return event

    async def __aenter__(self) -> Subscription:
        await self.ready()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


class Hub(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, channel: str, event: Event) -> None: ...
    def publish_threadsafe(self, channel: str, event: Event) -> None: ...
    def subscribe(self, *channels: str, max_queue: int = DEFAULT_MAX_QUEUE) -> Subscription: ...


def encode_event(event: Event) -> str:
    return json.dumps(event, separators=(",", ":"), default=str)


class _FanoutHub:
    """Local fan-out from a channel to its subscribers' queues (both hubs share it)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

    def subscribe(self, *channels: str, max_queue: int = DEFAULT_MAX_QUEUE) -> Subscription:
        if not channels:
            raise ValueError("subscribe needs at least one channel")
        subscription = Subscription(self, tuple(channels), max_queue)
        for channel in channels:
            self._subscribers.setdefault(channel, set()).add(subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        for channel in subscription.channels:
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[channel]

    def _deliver(self, channel: str, event: Event) -> None:
        for subscription in list(self._subscribers.get(channel, ())):
            subscription._offer(event)

    def _close_all(self) -> None:
        for subscribers in list(self._subscribers.values()):
            for subscription in list(subscribers):
                subscription.close()

    async def wait_ready(self) -> None:
        return None


class MemoryHub(_FanoutHub):
    """In-process hub: the embedded default (one process, one event loop)."""

    def __init__(self) -> None:
        super().__init__()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        # Job worker threads publish onto this loop (see publish_threadsafe).
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self._close_all()
        self._loop = None

    async def publish(self, channel: str, event: Event) -> None:
        self._deliver(channel, json.loads(encode_event(event)))

    def publish_threadsafe(self, channel: str, event: Event) -> None:
        loop = self._loop
        if loop is None:
            log.debug("hub not started; event on %s not delivered", channel)
            return
        payload = json.loads(encode_event(event))
        with contextlib.suppress(RuntimeError):  # the loop closed while we published
            loop.call_soon_threadsafe(self._deliver, channel, payload)


class RedisHub(_FanoutHub):
    """Redis pub/sub hub: one publishing connection and one listener task per process.

    The listener pattern-subscribes to every Worldbase channel and fans out locally, so
    subscribing never waits on Redis and a reconnect restores everything at once; each
    process receives every event (cheap at Worldbase's event rates) but decodes only the
    ones it has subscribers for.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "worldbase",
        max_backoff: float = 5.0,
        timeout: float = 2.0,
    ):
        super().__init__()
        self.url = url
        self.timeout = timeout
        # A publish while Redis is down is dropped and logged once per outage (see publish).
        self.outage = OutageLog("event hub (Redis)", logger=log)
        # Namespaced, so deployments (and caches, queues) can share one Redis.
        self.prefix = f"{namespace}:events:"
        self.max_backoff = max_backoff
        # Typed loosely: the installed types-redis stubs predate redis-py 5's aclose().
        self._client: Any = None
        self._sync_client: redis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._ready = asyncio.Event()
        self._client = aioredis.Redis.from_url(
            self.url,
            socket_keepalive=True,
            socket_connect_timeout=self.timeout,
            # Publishes only: the listener's pub/sub connection waits with its own timeout.
            socket_timeout=self.timeout,
        )
        self._listener = asyncio.create_task(self._listen(), name="worldbase-redis-hub")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self._close_all()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._sync_client is not None:
            self._sync_client.close()
            self._sync_client = None

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def publish(self, channel: str, event: Event) -> None:
        """Best effort, like pub/sub itself: while Redis is down the event is dropped and
        logged (once per outage), never raised, since the write that caused it is already
        committed. Sockets catch up on `ACCESS_CHANGED` when the hub is back."""
        if self._client is None:
            raise RuntimeError("RedisHub.publish before start()")
        try:
            await self._client.publish(self.prefix + channel, encode_event(event))
        except REDIS_DOWN as exc:
            self.outage.failed(exc, "; events are dropped until it is back")
            return
        self.outage.recovered()

    def publish_threadsafe(self, channel: str, event: Event) -> None:
        # Worker threads have their own event loops; a blocking client is simplest there.
        if self._sync_client is None:
            self._sync_client = redis.Redis.from_url(
                self.url,
                socket_keepalive=True,
                socket_connect_timeout=self.timeout,
                socket_timeout=self.timeout,
            )
        try:
            self._sync_client.publish(self.prefix + channel, encode_event(event))
        except REDIS_DOWN as exc:
            self.outage.failed(exc, "; events are dropped until it is back")
            return
        self.outage.recovered()

    async def _listen(self) -> None:
        backoff = 0.1
        lost = False  # a connection was lost: events may have been missed meanwhile
        while True:
            pubsub = None
            try:
                assert self._client is not None
                pubsub = self._client.pubsub()
                await pubsub.psubscribe(self.prefix + "*")
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        self._ready.set()
                        backoff = 0.1
                        if lost:
                            lost = False
                            log.warning("redis hub reconnected")
                            self._resume()
                    elif message["type"] == "pmessage":
                        self._dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                # Events published while disconnected are lost; subscribers stay attached
                # and are told when the hub is back (`_resume`).
                self._ready.clear()
                lost = True
                log.warning("redis hub lost its connection (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()

    def _resume(self) -> None:
        """After a reconnect: every subscriber gets `ACCESS_CHANGED` with `resumed: true`,
        so live sockets re-check access (an announced revocation may have been lost) and
        caches fed by events (the fast lane) drop what they can no longer trust."""
        for channel in list(self._subscribers):
            self._deliver(channel, {"type": ACCESS_CHANGED, "resumed": True})

    def _dispatch(self, raw_channel: bytes | str, data: bytes | str) -> None:
        if isinstance(raw_channel, bytes):
            raw_channel = raw_channel.decode()
        channel = raw_channel[len(self.prefix) :]
        if channel not in self._subscribers:
            return
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("ignored a non-JSON event on %s", channel)
            return
        self._deliver(channel, event)


def user_channel(user_id: uuid.UUID) -> str:
    """A user's control channel: every socket opened with their credentials listens on it."""
    return f"core:user:{user_id}"


async def announce_access_change(hub: Hub, *, channels: Iterable[str]) -> None:
    """After a committed change that may revoke access: the sockets listening on these
    channels, in every worker, re-check their client's access now and close if it is gone.

    Best effort: a lost announcement is caught by the sockets' periodic re-check.
    """
    for channel in channels:
        try:
            await hub.publish(channel, {"type": ACCESS_CHANGED})
        except Exception:
            log.warning("could not announce an access change on %s", channel, exc_info=True)


def create_hub(settings: Settings) -> Hub:
    if settings.redis_url:
        return RedisHub(
            settings.redis_url,
            namespace=settings.worldbase_namespace,
            timeout=settings.worldbase_redis_timeout,
        )
    return MemoryHub()
