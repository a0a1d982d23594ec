"""The fast lane: what it keeps, what it never keeps, 304s, bounds and invalidation (also
through the hub, as another worker would receive it)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from worldbase.core import fast_lane
from worldbase.core.fast_lane import FastLaneMiddleware, FastLaneStore
from worldbase.core.realtime import Hub


class Backend:
    """A tiny app whose routes count their calls; the fast lane in front of it."""

    def __init__(self, **lane: Any) -> None:
        self.calls = 0
        self.version = 1
        self.hook: Any = None

        async def tile(request: Request) -> Response:
            self.calls += 1
            if self.hook is not None:
                await self.hook()
            query = request.query_params
            policy = fast_lane.CachePolicy(
                max_age=int(query.get("max_age", "300")),
                public=query.get("public", "1") == "1",
                tags=("layer:a",) if query.get("tags", "1") == "1" else (),
            )
            status = int(query.get("status", "200"))
            body = f"tile v{self.version} {request.url.path}".encode()
            response = Response(
                body if status == 200 else b"",
                status_code=status,
                media_type="application/x-protobuf",
                headers={"ETag": f'"v{self.version}"'},
            )
            return policy.apply(request, response)

        app = Starlette(routes=[Route("/tiles/{z}", tile, methods=["GET", "POST"])])
        self.middleware = FastLaneMiddleware(
            app, max_bytes=lane.get("max_bytes", 1 << 20), ttl=lane.get("ttl", 30)
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.middleware), base_url="http://lane"
        )

    @property
    def store(self) -> FastLaneStore:
        return self.middleware.store


async def test_keeps_public_tagged_responses_and_answers_them_with_304s() -> None:
    backend = Backend()
    first = await backend.client.get("/tiles/1")
    assert first.status_code == 200 and "x-fast-lane" not in first.headers
    second = await backend.client.get("/tiles/1")
    assert second.status_code == 200 and second.headers["x-fast-lane"] == "hit"
    assert second.content == first.content and backend.calls == 1
    assert second.headers["etag"] == '"v1"'
    assert second.headers["content-type"] == "application/x-protobuf"
    not_modified = await backend.client.get("/tiles/1", headers={"If-None-Match": '"v1"'})
    assert not_modified.status_code == 304 and not_modified.content == b""
    other = await backend.client.get("/tiles/1", headers={"If-None-Match": '"v0"'})
    assert other.status_code == 200 and other.content == first.content
    # Another query string is another entry.
    await backend.client.get("/tiles/1?x=2")
    assert backend.calls == 2
    # Empty tiles (204) are kept too.
    for _ in range(2):
        assert (await backend.client.get("/tiles/2?status=204")).status_code == 204
    assert backend.calls == 3


@pytest.mark.parametrize(
    "query",
    [
        "tags=0",  # nothing could invalidate it
        "public=0",  # not for shared caches
        "public=0&tags=0",
        "max_age=0",
        "status=404",
        "status=500",
    ],
)
async def test_never_keeps_what_is_not_public_tagged_and_successful(query: str) -> None:
    backend = Backend()
    for _ in range(2):
        response = await backend.client.get(f"/tiles/1?{query}")
        assert "x-fast-lane" not in response.headers
    assert backend.calls == 2 and not backend.store.entries


async def test_other_methods_pass_through() -> None:
    backend = Backend()
    for _ in range(2):
        assert (await backend.client.post("/tiles/1")).status_code == 200
    assert backend.calls == 2 and not backend.store.entries


async def test_invalidation_drops_entries_of_the_tag_in_every_store() -> None:
    one, two = Backend(), Backend()
    for backend in (one, two):
        await backend.client.get("/tiles/1")
        backend.version = 2
    fast_lane.invalidate_local("layer:b")  # another tag: nothing happens
    assert (await one.client.get("/tiles/1")).headers.get("x-fast-lane") == "hit"
    fast_lane.invalidate_local("layer:a")
    for backend in (one, two):
        fresh = await backend.client.get("/tiles/1")
        assert fresh.content.startswith(b"tile v2") and "x-fast-lane" not in fresh.headers
    assert not one.store.by_tag.get("layer:b")


async def test_a_response_rendered_across_an_invalidation_is_not_kept() -> None:
    backend = Backend()

    async def change_meanwhile() -> None:
        fast_lane.invalidate_local("layer:a")

    backend.hook = change_meanwhile
    await backend.client.get("/tiles/1")
    backend.hook = None
    assert not backend.store.entries
    await backend.client.get("/tiles/1")
    assert len(backend.store.entries) == 1


async def test_entries_expire_with_max_age_and_the_lane_ttl() -> None:
    backend = Backend(ttl=0.2)
    await backend.client.get("/tiles/1")
    assert (await backend.client.get("/tiles/1")).headers.get("x-fast-lane") == "hit"
    await asyncio.sleep(0.25)
    assert "x-fast-lane" not in (await backend.client.get("/tiles/1")).headers
    short = Backend()
    await short.client.get("/tiles/1?max_age=1")
    (entry,) = short.store.entries.values()
    assert entry.expires - asyncio.get_running_loop().time() < 1.5


async def test_the_store_is_bounded_in_bytes_least_recently_used_out() -> None:
    backend = Backend(max_bytes=100)
    for z in range(8):  # 16 bytes each: the 7th does not fit
        await backend.client.get(f"/tiles/{z}")
        await backend.client.get("/tiles/0")  # keeps tile 0 recently used
    assert backend.store.size <= 100
    assert b"/tiles/0?" in backend.store.entries and b"/tiles/1?" not in backend.store.entries
    assert sum(len(e.body) for e in backend.store.entries.values()) == backend.store.size
    assert set().union(*backend.store.by_tag.values()) == set(backend.store.entries)
    off = Backend(max_bytes=0)
    for _ in range(2):
        assert "x-fast-lane" not in (await off.client.get("/tiles/1")).headers
    assert off.calls == 2


async def test_invalidations_from_other_workers_arrive_through_the_hub(hub: Hub) -> None:
    backend = Backend()
    await backend.client.get("/tiles/1")
    listener = fast_lane.start_listener(hub)
    try:
        await asyncio.sleep(0.2)  # subscribed
        # What another worker's `invalidate` publishes (this process would drop it at once).
        await hub.publish(fast_lane.CHANNEL, {"tags": ["layer:a"]})
        for _ in range(100):
            if not backend.store.entries:
                break
            await asyncio.sleep(0.02)
        assert not backend.store.entries
    finally:
        await fast_lane.stop_listener(listener)
