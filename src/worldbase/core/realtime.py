"""The realtime hub: publish(channel, event) / subscribe(*channels), in-process or over Redis.

`MemoryHub` serves one process (embedded mode). `RedisHub` carries events through Redis
pub/sub so a WebSocket held by worker A sees an event published on worker B. Each
subscriber has a bounded queue; one that falls behind is dropped (its iterator raises
`SubscriberTooSlow`) instead of slowing the publishers or the other subscribers.

Events are JSON objects; both hubs round-trip them through JSON so embedded and served
deployments deliver exactly the same values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from worldbase.settings import Settings

log = logging.getLogger("worldbase.realtime")

Event = dict[str, Any]
DEFAULT_MAX_QUEUE = 256
WS_TRY_AGAIN_LATER = 1013  # the close code for a dropped, too-slow client
WS_ACCESS_REVOKED = 4403  # the client may no longer read what the socket carries
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

    async def ready(self) -> None:
        """Wait until events published from now on are certain to be delivered."""
        await self.hub.wait_ready()

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


def _encode(event: Event) -> str:
    return json.dumps(event, separators=(",", ":"), default=str)


# A published event reaches every local subscriber as one shared (read-only) object: its
# text is kept for a while so that N WebSockets cost one encoding, not N. The entry holds the
# object, so its id cannot be reused while cached.
_SENT_TEXTS: OrderedDict[int, tuple[Event, str]] = OrderedDict()
_SENT_TEXTS_MAX = 1024


def _encode_shared(event: Event) -> str:
    cached = _SENT_TEXTS.get(id(event))
    if cached is not None and cached[0] is event:
        return cached[1]
    text = _encode(event)
    _SENT_TEXTS[id(event)] = (event, text)
    if len(_SENT_TEXTS) > _SENT_TEXTS_MAX:
        _SENT_TEXTS.popitem(last=False)
    return text


_BATCH_TEXTS: OrderedDict[tuple[int, ...], tuple[list[Event], str]] = OrderedDict()


def _encode_batch_shared(events: list[Event]) -> str:
    """A batch frame's text, made once for the sockets that send the same events."""
    key = tuple(map(id, events))
    cached = _BATCH_TEXTS.get(key)
    if cached is not None and all(a is b for a, b in zip(cached[0], events, strict=True)):
        return cached[1]
    text = '{"type":"batch","events":[' + ",".join(map(_encode_shared, events)) + "]}"
    _BATCH_TEXTS[key] = (events, text)
    if len(_BATCH_TEXTS) > _SENT_TEXTS_MAX:
        _BATCH_TEXTS.popitem(last=False)
    return text


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
        self._deliver(channel, json.loads(_encode(event)))

    def publish_threadsafe(self, channel: str, event: Event) -> None:
        loop = self._loop
        if loop is None:
            log.debug("hub not started; event on %s not delivered", channel)
            return
        payload = json.loads(_encode(event))
        with contextlib.suppress(RuntimeError):  # the loop closed while we published
            loop.call_soon_threadsafe(self._deliver, channel, payload)


class RedisHub(_FanoutHub):
    """Redis pub/sub hub: one publishing connection and one listener task per process.

    The listener pattern-subscribes to every Worldbase channel and fans out locally, so
    subscribing never waits on Redis and a reconnect restores everything at once; each
    process receives every event (cheap at Worldbase's event rates) but decodes only the
    ones it has subscribers for.
    """

    def __init__(self, url: str, *, namespace: str = "worldbase", max_backoff: float = 5.0):
        super().__init__()
        self.url = url
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
        self._client = aioredis.Redis.from_url(self.url, socket_keepalive=True)
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
        if self._client is None:
            raise RuntimeError("RedisHub.publish before start()")
        await self._client.publish(self.prefix + channel, _encode(event))

    def publish_threadsafe(self, channel: str, event: Event) -> None:
        # Worker threads have their own event loops; a blocking client is simplest there.
        if self._sync_client is None:
            self._sync_client = redis.Redis.from_url(self.url, socket_keepalive=True)
        self._sync_client.publish(self.prefix + channel, _encode(event))

    async def _listen(self) -> None:
        backoff = 0.1
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
                    elif message["type"] == "pmessage":
                        self._dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                # Events published while disconnected are lost; subscribers stay attached.
                self._ready.clear()
                log.warning("redis hub lost its connection (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()

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


def _never(_event: Event) -> bool:
    return False


@dataclass(frozen=True)
class AccessGuard:
    """Keeps checking that a socket's client may still read what it carries: connect-time
    checks alone would let a revoked user listen on for as long as the socket lives.

    `check()` answers from fresh rows; it runs on an `ACCESS_CHANGED` control event, before
    an event for which `rechecks(event)` is true is sent (so a change that revokes access is
    not delivered to the revoked), and every `every` seconds.
    """

    check: Callable[[], Awaitable[bool]]
    every: float
    rechecks: Callable[[Event], bool] = _never


def create_hub(settings: Settings) -> Hub:
    if settings.redis_url:
        return RedisHub(settings.redis_url, namespace=settings.worldbase_namespace)
    return MemoryHub()


async def serve_websocket(
    websocket: WebSocket,
    subscription: Subscription,
    *,
    heartbeat_seconds: float = 20.0,
    initial: Event | list[Event] | None = None,
    until: Callable[[Event], bool] | None = None,
    on_message: Callable[[Any], Awaitable[None]] | None = None,
    on_undecodable: Callable[[str], Awaitable[None]] | None = None,
    batch: Callable[[], bool] | None = None,
    guard: AccessGuard | None = None,
) -> None:
    """Stream a subscription's events to an accepted WebSocket as JSON text.

    Sends `initial` first, then each event; sends `{"type": "ping"}` after
    `heartbeat_seconds` without sending anything; closes with 1000 after an event for which
    `until(event)` is true, with 1013 when the client was dropped as too slow, and stops
    when the client disconnects. Client messages go to `on_message` (JSON-decoded) or
    are ignored; text that is not JSON goes to `on_undecodable` (as is) or is ignored.
    While either runs no event is sent, so its replies (and a snapshot) come before the
    events its change lets through. The subscription is always closed.

    When `batch()` is true (a client's choice, asked at every burst), events that are
    queued together go out as one frame `{"type": "batch", "events": [...]}`: at hundreds
    of events a second to many clients, frames are what costs (each is a send here and a
    receive there), not bytes.

    With a `guard`, the socket closes with 4403 (nothing more sent) as soon as its check
    fails (see `AccessGuard`); a check that errors closes it with 1013.

    Events are awaited straight from the subscription (client messages and the heartbeat
    have a task each): with a thousand sockets, a task and an `asyncio.wait` per event
    and socket were most of the fan-out's cost.
    """
    loop = asyncio.get_running_loop()
    sending = asyncio.Lock()  # one writer at a time: events, replies, pings
    last_sent = loop.time()
    client_gone = False
    close_code: int | None = None
    revoked_code: int | None = None  # set by the periodic re-check, which ends the stream

    async def denied() -> int | None:
        """The close code if the guard's check fails now, else None."""
        assert guard is not None
        try:
            allowed = await guard.check()
        except Exception:
            log.warning("a live socket's access check failed", exc_info=True)
            return WS_TRY_AGAIN_LATER
        return None if allowed else WS_ACCESS_REVOKED

    async def send(text: str) -> None:
        nonlocal last_sent
        await websocket.send_text(text)
        last_sent = loop.time()

    def end_stream() -> None:
        nonlocal client_gone
        client_gone = True
        subscription.close()  # the loop below stops at its next event

    async def receive_messages() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if on_message is None or text is None:
                    continue
                async with sending:
                    with contextlib.suppress(ValueError):
                        try:
                            decoded = json.loads(text)
                        except ValueError:
                            if on_undecodable is not None:
                                await on_undecodable(text)
                            continue
                        await on_message(decoded)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        finally:
            end_stream()

    async def heartbeat() -> None:
        try:
            while True:
                await asyncio.sleep(max(0.0, last_sent + heartbeat_seconds - loop.time()))
                if loop.time() - last_sent >= heartbeat_seconds:
                    async with sending:
                        await send('{"type":"ping"}')
        except (WebSocketDisconnect, RuntimeError, OSError):
            end_stream()

    async def recheck() -> None:
        nonlocal revoked_code
        assert guard is not None
        while True:
            await asyncio.sleep(guard.every)
            code = await denied()
            if code is not None:
                revoked_code = code
                subscription.close()  # the loop below stops at once and closes with the code
                return

    helpers: list[asyncio.Task[None]] = []
    try:
        if initial is not None:
            for event in initial if isinstance(initial, list) else [initial]:
                await send(_encode(event))
                if until is not None and until(event):
                    close_code = 1000
                    return
        helpers = [
            asyncio.create_task(receive_messages()),
            asyncio.create_task(heartbeat()),
        ]
        if guard is not None:
            helpers.append(asyncio.create_task(recheck()))
        while True:
            try:
                event = await anext(subscription)
            except StopAsyncIteration:
                close_code = revoked_code or (None if client_gone else 1000)
                return
            except SubscriberTooSlow:
                close_code = WS_TRY_AGAIN_LATER
                return
            # Everything already queued goes out now: one wake-up per burst, not per event.
            burst = [event, *subscription.pop_ready()]
            # One check per burst that may change access; a revoked client gets none of it.
            if guard is not None and any(
                e.get("type") == ACCESS_CHANGED or guard.rechecks(e) for e in burst
            ):
                close_code = await denied()
                if close_code is not None:
                    return
                burst = [e for e in burst if e.get("type") != ACCESS_CHANGED]
                if not burst:
                    continue
            async with sending:
                if batch is not None and len(burst) > 1 and until is None and batch():
                    await send(_encode_batch_shared(burst))
                    burst = []
                for ready in burst:
                    await send(_encode_shared(ready))
                    if until is not None and until(ready):
                        close_code = 1000
                        return
    except (WebSocketDisconnect, RuntimeError, OSError):
        # RuntimeError/OSError: the client went away while we were sending.
        return
    finally:
        subscription.close()
        for task in helpers:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if close_code is not None and websocket.application_state == WebSocketState.CONNECTED:
            reason = "Access revoked" if close_code == WS_ACCESS_REVOKED else None
            with contextlib.suppress(Exception):
                await websocket.close(code=close_code, reason=reason)
