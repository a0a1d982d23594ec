"""Serving a hub subscription over an accepted WebSocket: `serve_websocket`.

Events go out as JSON text (one shared encoding per event for all sockets), with a
heartbeat, optional batching, client messages handled between events, and an `AccessGuard`
that closes the socket as soon as its client may no longer read what it carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from worldbase.core.errors import DomainError
from worldbase.core.realtime import (
    ACCESS_CHANGED,
    Event,
    SubscriberTooSlow,
    Subscription,
    encode_event,
)

log = logging.getLogger("worldbase.realtime")

WS_TRY_AGAIN_LATER = 1013  # the close code for a dropped, too-slow client
WS_ACCESS_REVOKED = 4403  # the client may no longer read what the socket carries
# What a gone client raises while we send or receive.
_CLIENT_GONE = (WebSocketDisconnect, RuntimeError, OSError)

# A published event reaches every local subscriber as one shared (read-only) object: its
# text is kept for a while so that N WebSockets cost one encoding, not N. The entry holds the
# object, so its id cannot be reused while cached.
_SENT_TEXTS: OrderedDict[int, tuple[Event, str]] = OrderedDict()
_SENT_TEXTS_MAX = 1024


def _encode_shared(event: Event) -> str:
    cached = _SENT_TEXTS.get(id(event))
    if cached is not None and cached[0] is event:
        return cached[1]
    text = encode_event(event)
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


async def close_refused(websocket: WebSocket, exc: DomainError) -> None:
    """Closes a socket refused before it streams: 4000 + the HTTP status (4401, 4403,
    4404...), the message as the reason."""
    await websocket.close(code=4000 + exc.status_code, reason=exc.message[:120])


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
    stream = _SocketStream(
        websocket, subscription, loop, heartbeat_seconds, until, on_message, on_undecodable,
        batch, guard, last_sent=loop.time(),
    )  # fmt: skip
    await stream.run(initial)


@dataclass(eq=False)
class _SocketStream:
    """One socket's serving state: its helper tasks (client messages, heartbeat, periodic
    access re-check) and the event loop share it."""

    websocket: WebSocket
    subscription: Subscription
    loop: asyncio.AbstractEventLoop
    heartbeat_seconds: float
    until: Callable[[Event], bool] | None
    on_message: Callable[[Any], Awaitable[None]] | None
    on_undecodable: Callable[[str], Awaitable[None]] | None
    batch: Callable[[], bool] | None
    guard: AccessGuard | None
    last_sent: float
    client_gone: bool = False
    revoked_code: int | None = None  # set by the periodic re-check, which ends the stream
    # One writer at a time: events, replies, pings.
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def run(self, initial: Event | list[Event] | None) -> None:
        close_code: int | None = None
        helpers: list[asyncio.Task[None]] = []
        try:
            close_code = await self._send_initial(initial)
            if close_code is not None:
                return
            helpers = [
                asyncio.create_task(self._receive_messages()),
                asyncio.create_task(self._heartbeat()),
            ]
            if self.guard is not None:
                helpers.append(asyncio.create_task(self._recheck(self.guard)))
            close_code = await self._forward_events()
        except _CLIENT_GONE:
            return  # RuntimeError/OSError: the client went away while we were sending
        finally:
            await self._finish(helpers, close_code)

    async def _send_initial(self, initial: Event | list[Event] | None) -> int | None:
        if initial is None:
            return None
        for event in initial if isinstance(initial, list) else [initial]:
            await self._send(encode_event(event))
            if self.until is not None and self.until(event):
                return 1000
        return None

    async def _forward_events(self) -> int | None:
        """Sends the subscription's events until the stream ends; the close code."""
        while True:
            try:
                event = await anext(self.subscription)
            except StopAsyncIteration:
                return self.revoked_code or (None if self.client_gone else 1000)
            except SubscriberTooSlow:
                return WS_TRY_AGAIN_LATER
            # Everything already queued goes out now: one wake-up per burst, not per event.
            burst = [event, *self.subscription.pop_ready()]
            # One check per burst that may change access; a revoked client gets none of it.
            guard = self.guard
            if guard is not None and any(
                e.get("type") == ACCESS_CHANGED or guard.rechecks(e) for e in burst
            ):
                denied = await self._denied(guard)
                if denied is not None:
                    return denied
            # Control events are never forwarded (the hub sends one to every channel after
            # reconnecting, guarded or not).
            burst = [e for e in burst if e.get("type") != ACCESS_CHANGED]
            if not burst:
                continue
            if await self._send_burst(burst):
                return 1000

    async def _send_burst(self, burst: list[Event]) -> bool:
        """Sends the events (batched if the client asks); whether `until` ended the stream."""
        async with self.sending:
            if self.batch is not None and len(burst) > 1 and self.until is None and self.batch():
                await self._send(_encode_batch_shared(burst))
                return False
            for event in burst:
                await self._send(_encode_shared(event))
                if self.until is not None and self.until(event):
                    return True
        return False

    async def _send(self, text: str) -> None:
        await self.websocket.send_text(text)
        self.last_sent = self.loop.time()

    async def _denied(self, guard: AccessGuard) -> int | None:
        """The close code if the guard's check fails now, else None."""
        try:
            allowed = await guard.check()
        except Exception:
            log.warning("a live socket's access check failed", exc_info=True)
            return WS_TRY_AGAIN_LATER
        return None if allowed else WS_ACCESS_REVOKED

    def _end_stream(self) -> None:
        self.client_gone = True
        self.subscription.close()  # the event loop stops at its next event

    async def _receive_messages(self) -> None:
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if self.on_message is None or text is None:
                    continue
                async with self.sending:
                    await self._handle_message(self.on_message, text)
        except _CLIENT_GONE:
            return
        finally:
            self._end_stream()

    async def _handle_message(
        self, on_message: Callable[[Any], Awaitable[None]], text: str
    ) -> None:
        with contextlib.suppress(ValueError):
            try:
                decoded = json.loads(text)
            except ValueError:
                if self.on_undecodable is not None:
                    await self.on_undecodable(text)
                return
            await on_message(decoded)

    async def _heartbeat(self) -> None:
        try:
            while True:
                due = self.last_sent + self.heartbeat_seconds
                await asyncio.sleep(max(0.0, due - self.loop.time()))
                if self.loop.time() - self.last_sent >= self.heartbeat_seconds:
                    async with self.sending:
                        await self._send('{"type":"ping"}')
        except _CLIENT_GONE:
            self._end_stream()

    async def _recheck(self, guard: AccessGuard) -> None:
        while True:
            await asyncio.sleep(guard.every)
            code = await self._denied(guard)
            if code is not None:
                self.revoked_code = code
                self.subscription.close()  # the event loop stops at once, closing with the code
                return

    async def _finish(self, helpers: list[asyncio.Task[None]], close_code: int | None) -> None:
        self.subscription.close()
        for task in helpers:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        websocket = self.websocket
        if close_code is not None and websocket.application_state == WebSocketState.CONNECTED:
            reason = "Access revoked" if close_code == WS_ACCESS_REVOKED else None
            with contextlib.suppress(Exception):
                await websocket.close(code=close_code, reason=reason)
