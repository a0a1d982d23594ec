"""OSM WebSocket subscribers (`/ws/{client_id}`) during the load: each reconnects when its
socket drops and notes when it was subscribed and which objects reached it when."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import websockets

from tests.cluster.workload import World


@dataclass
class WsLog:
    """One WebSocket subscriber: when it was subscribed, and which OSM ids it got when."""

    name: str
    via: str
    intervals: list[list[float]] = field(default_factory=list)
    received: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _osm_ids(message: Any) -> list[str]:
    found: list[str] = []
    if isinstance(message, dict):
        if "osm_id" in message and "type" in message and "version" in message:
            found.append(str(message["osm_id"]))
        for value in message.values():
            found += _osm_ids(value)
    elif isinstance(message, list):
        for value in message:
            found += _osm_ids(value)
    return found


async def osm_subscriber(world: World, name: str, base_ws: str, via: str) -> WsLog:
    """A client of `/ws/{client_id}` that reconnects whenever its socket drops."""
    log = WsLog(name=name, via=via)
    world.ws_logs.append(log)
    attempt = 0
    while not world.stop.is_set():
        attempt += 1
        url = f"{base_ws}/ws/{name}-{attempt}"
        interval: list[float] | None = None
        try:
            async with websockets.connect(url, open_timeout=5, ping_interval=None) as ws:
                welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if welcome.get("type") != "welcome":
                    raise RuntimeError(f"first message {welcome}")
                await ws.send(
                    json.dumps(
                        {
                            "type": "subscribe",
                            "types": ["node"],
                            "tags": [f"cluster={world.run_id}"],
                        }
                    )
                )
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if message.get("type") == "subscribed":
                        break
                interval = [world.rec.now(), world.rec.now()]
                log.intervals.append(interval)
                while not world.stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 1.0)
                    except TimeoutError:
                        interval[1] = world.rec.now()
                        continue
                    now = world.rec.now()
                    interval[1] = now
                    for osm_id in _osm_ids(json.loads(raw)):
                        log.received.setdefault(osm_id, now)
        except Exception as exc:
            log.errors.append(f"{world.rec.now():.1f}s {type(exc).__name__}: {exc}"[:200])
        if interval is not None:
            interval[1] = world.rec.now()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(world.stop.wait(), 0.5)
    return log
