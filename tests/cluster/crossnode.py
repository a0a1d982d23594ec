"""Cross-node behaviour, checked against the two API processes directly (no proxy):
events cross between them, the login limit counts across them, a tile edit through one
invalidates the tile cached by both."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import websockets

from tests.cluster.checks import Check
from tests.cluster.processes import Cluster
from tests.cluster.records import sha256
from tests.cluster.workload import TILE, World

EVENT_WAIT = 5.0
INVALIDATION_WAIT = 1.0


def _ws(base: str) -> str:
    return base.replace("http://", "ws://", 1)


async def _await_message(ws: Any, match: Any, timeout: float) -> float | None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (left := timeout - (loop.time() - started)) > 0:
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            return None
        if match(message):
            return loop.time() - started
    return None


async def map_events(cluster: Cluster, world: World, check: Check, listen: int, write: int) -> None:
    user = world.users[0]
    url = f"{_ws(cluster.api_url(listen))}/api/maps/{user.map_id}/events?token={user.token}"
    async with websockets.connect(url, open_timeout=5, ping_interval=None) as ws:
        subscribed = await _await_message(ws, lambda m: m.get("type") == "subscribed", 5)
        if subscribed is None:
            check.fail({"what": "map events: no `subscribed`", "on": f"api{listen}"})
            return
        content = f"cross-node {listen}<-{write} {random.random()}"
        async with httpx.AsyncClient(base_url=cluster.api_url(write), timeout=10) as client:
            response = await client.post(
                "/api/comments",
                json={"content": content, "map_id": user.map_id},
                headers=user.headers,
            )
        if response.status_code != 201:
            check.fail(
                {"what": "comment write", "via": f"api{write}", "status": response.status_code}
            )
            return
        waited = await _await_message(ws, lambda m: m.get("type") == "comment.created", EVENT_WAIT)
        key = f"map_event_api{write}_to_api{listen}_s"
        check.figures[key] = None if waited is None else round(waited, 3)
        if waited is None:
            check.fail(
                {
                    "what": f"comment.created written via api{write} never reached a "
                    f"socket on api{listen} within {EVENT_WAIT:.0f} s"
                }
            )


async def osm_events(cluster: Cluster, world: World, check: Check, listen: int, write: int) -> None:
    url = f"{_ws(cluster.api_url(listen))}/ws/crossnode-{listen}-{write}"
    osm_id = next(world.osm_ids)
    async with websockets.connect(url, open_timeout=5, ping_interval=None) as ws:
        await _await_message(ws, lambda m: m.get("type") == "welcome", 5)
        await ws.send(json.dumps({"type": "subscribe", "types": ["node"]}))
        if await _await_message(ws, lambda m: m.get("type") == "subscribed", 5) is None:
            check.fail({"what": "osm socket: no `subscribed`", "on": f"api{listen}"})
            return
        node = {
            "type": "node",
            "id": osm_id,
            "lon": 13.3,
            "lat": 52.5,
            "version": 1,
            "tags": {"crossnode": "yes"},
        }
        async with httpx.AsyncClient(base_url=cluster.api_url(write), timeout=10) as client:
            response = await client.post(
                f"/data-sources/{world.osm_source}/ingest",
                json={"elements": [node]},
                headers={"Authorization": f"Bearer {world.osm_token}"},
            )
        if response.status_code != 200:
            check.fail({"what": "osm ingest", "via": f"api{write}", "status": response.status_code})
            return
        waited = await _await_message(ws, lambda m: str(osm_id) in json.dumps(m), EVENT_WAIT)
        check.figures[f"osm_event_api{write}_to_api{listen}_s"] = (
            None if waited is None else round(waited, 3)
        )
        if waited is None:
            check.fail(
                {
                    "what": f"osm object.created ingested via api{write} never reached "
                    f"a socket on api{listen} within {EVENT_WAIT:.0f} s"
                }
            )


async def check_events(cluster: Cluster, world: World) -> Check:
    check = Check(
        "a WebSocket on one API process gets the events of writes through the other", True
    )
    for listen, write in ((0, 1), (1, 0)):
        try:
            await map_events(cluster, world, check, listen, write)
            await osm_events(cluster, world, check, listen, write)
        except Exception as exc:
            check.fail({"what": f"socket on api{listen}", "error": f"{type(exc).__name__}: {exc}"})
    return check


async def check_rate_limit(cluster: Cluster, world: World, limit: int) -> Check:
    """Sign-ins from one client address, alternating between the processes: the 429 comes
    after `limit` of them in all, not `limit` per process."""
    check = Check(f"the login limit ({limit}/minute) counts across both API processes", True)
    address = f"203.0.113.{random.randrange(1, 250)}"
    user = world.users[-1]
    body = {"email": user.email, "password": user.password}
    clients = [httpx.AsyncClient(base_url=cluster.api_url(i), timeout=15) for i in (0, 1)]
    accepted = 0
    first_429: dict[str, Any] | None = None
    statuses: list[int] = []
    try:
        for attempt in range(2 * limit + 2):
            client = clients[attempt % 2]
            response = await client.post(
                "/api/auth/login", json=body, headers={"X-Forwarded-For": address}
            )
            statuses.append(response.status_code)
            if response.status_code == 200:
                accepted += 1
            elif response.status_code == 429:
                first_429 = {
                    "attempt": attempt + 1,
                    "process": f"api{attempt % 2}",
                    "retry_after": response.headers.get("retry-after"),
                }
                break
    finally:
        for client in clients:
            await client.aclose()
    check.figures |= {"accepted_before_429": accepted, "first_429": first_429, "statuses": statuses}
    if accepted != limit or first_429 is None:
        check.fail({"expected_accepted": limit, "accepted": accepted, "first_429": first_429})
    elif not first_429["retry_after"]:
        check.fail({"what": "429 without Retry-After"})
    return check


async def _tile(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[int, str]:
    response = await client.get(url, headers=headers)
    return response.status_code, sha256(response.content)


async def check_tile_invalidation(cluster: Cluster, world: World) -> Check:
    """Read a tile via A and B (cached in both), edit through B, read via A and B."""
    check = Check(
        f"a tile cached by both processes is invalidated in both within "
        f"{INVALIDATION_WAIT:.0f} s of an edit through one",
        True,
    )
    user = world.users[1 % len(world.users)]
    z, x, y = TILE
    url = f"/api/layers/{user.layer_id}/tiles/{z}/{x}/{y}"
    a = httpx.AsyncClient(base_url=cluster.api_url(0), timeout=15)
    b = httpx.AsyncClient(base_url=cluster.api_url(1), timeout=15)
    try:
        # A feature first (through A), so both cache a tile with content, not an empty 204.
        seed = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [2.0, 54.5]},
            "properties": {"crossnode": "seed"},
        }
        response = await a.post(
            f"/api/layers/{user.layer_id}/features",
            json={"type": "FeatureCollection", "features": [seed]},
            headers=user.headers,
        )
        if response.status_code != 201:
            check.fail({"what": "feature write via api0", "status": response.status_code})
            return check
        before = [await _tile(c, url, user.headers) for c in (a, b, a, b)]
        check.figures["before"] = [s for s, _ in before]
        if any(status != 200 for status, _ in before):
            check.fail(
                {"what": "the tile before the edit is not 200", "statuses": check.figures["before"]}
            )
        point = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [3.0, 54.0]},
            "properties": {"crossnode": True},
        }
        response = await b.post(
            f"/api/layers/{user.layer_id}/features",
            json={"type": "FeatureCollection", "features": [point]},
            headers=user.headers,
        )
        if response.status_code != 201:
            check.fail({"what": "feature write via api1", "status": response.status_code})
            return check
        loop = asyncio.get_running_loop()
        for name, client, old in (("api0", a, before[2][1]), ("api1", b, before[3][1])):
            started = loop.time()
            immediate = await _tile(client, url, user.headers)
            now = immediate
            while now[1] == old and loop.time() - started < INVALIDATION_WAIT:
                await asyncio.sleep(0.1)
                now = await _tile(client, url, user.headers)
            check.figures[name] = {
                "immediately_new": immediate[1] != old,
                "new_after_s": round(loop.time() - started, 3),
                "status": now[0],
            }
            if now[1] == old or now[0] != 200:
                check.fail(
                    {"what": f"{name} still serves the tile from before the edit", "status": now[0]}
                )
    finally:
        await a.aclose()
        await b.aclose()
    return check
