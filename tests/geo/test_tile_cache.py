"""The two-tier tile cache on the current backend (memory + local files, or Redis + S3), and
the tile pipeline in front of it (`serve`: 304, tiers, headers, the cache policy)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from starlette.requests import Request

from worldbase.core import fast_lane
from worldbase.core.cache import create_cache
from worldbase.core.fast_lane import CachePolicy
from worldbase.core.storage_backends import create_storage
from worldbase.geo.tile_cache import TileCache, TileKey, flush_pending, serve, tile_key
from worldbase.settings import Settings


@pytest.fixture
async def tiles(make_settings: Callable[..., Settings]) -> AsyncIterator[TileCache]:
    # Its own storage prefix: the served run shares one bucket across tests.
    settings = make_settings(storage_prefix=f"t-{uuid.uuid4().hex[:8]}")
    cache = create_cache(settings)
    storage = create_storage(settings)
    await cache.clear()
    yield TileCache(cache=cache, storage=storage)
    await flush_pending()
    await cache.clear()
    await cache.close()
    await storage.close()


def key(**changes: Any) -> TileKey:
    values: dict[str, Any] = {
        "namespace": "samsyn",
        "layer_id": "layer-1",
        "version": "v1",
        "params": '{"rescale":[[0,30]]}',
        "z": 3,
        "x": 4,
        "y": 5,
        "fmt": "png",
    }
    values.update(changes)
    return tile_key(**values)


def test_keys_and_etags_cover_every_part() -> None:
    base = key()
    assert base == key()
    for change in (
        {"namespace": "habitats"},
        {"layer_id": "layer-2"},
        {"version": "v2"},
        {"params": "{}"},
        {"z": 4},
        {"x": 5},
        {"y": 6},
        {"fmt": "webp"},
        {"tms": "WorldCRS84Quad"},
        {"scale": 2},
    ):
        other = key(**change)
        assert other.etag != base.etag, change
        assert other.storage_key != base.storage_key, change
    assert base.storage_key.startswith("tiles/samsyn/layer-1/v1/WebMercatorQuad/3/4/5@1x-")
    odd = tile_key(
        namespace="a/b", layer_id="../x", version="1 2", params="", z=0, x=0, y=0, fmt="png"
    )
    assert ".." not in odd.storage_key and "a_b" in odd.storage_key


async def test_render_once_then_both_tiers(tiles: TileCache) -> None:
    calls: list[int] = []

    async def render() -> bytes:
        calls.append(1)
        return b"tile-bytes"

    k = key()
    first = await tiles.get_or_render(k, media_type="image/png", render=render)
    assert (first.content, first.hit, first.media_type) == (b"tile-bytes", None, "image/png")
    second = await tiles.get_or_render(k, media_type="image/png", render=render)
    assert (second.content, second.hit) == (b"tile-bytes", "memory")
    assert second.etag == first.etag == k.etag
    await flush_pending()
    await tiles.cache.clear()  # a restart, or another worker: tier 2 still has it
    third = await tiles.get_or_render(k, media_type="image/png", render=render)
    assert (third.content, third.hit) == (b"tile-bytes", "storage")
    fourth = await tiles.get_or_render(k, media_type="image/png", render=render)
    assert fourth.hit == "memory"
    assert len(calls) == 1


async def test_empty_tiles_are_cached(tiles: TileCache) -> None:
    calls: list[int] = []

    async def render() -> bytes:
        calls.append(1)
        return b""

    for _ in range(2):
        tile = await tiles.get_or_render(key(), media_type="image/png", render=render)
        assert tile.content == b""
    assert len(calls) == 1


async def test_invalidate_drops_every_version_of_one_layer(tiles: TileCache) -> None:
    for version in ("v1", "v2"):
        await tiles.set(key(version=version), b"x", media_type="image/png")
    kept = key(layer_id="layer-2")
    await tiles.set(kept, b"y", media_type="image/png")
    await flush_pending()
    removed = await tiles.invalidate(namespace="samsyn", layer_id="layer-1")
    assert removed == 2
    assert await tiles.get(key()) is None
    assert await tiles.get(key(version="v2")) is None
    assert await tiles.get(kept) == (b"y", "memory")


async def test_memory_only_cache(make_settings: Callable[..., Settings]) -> None:
    cache = create_cache(make_settings())
    try:
        tiles = TileCache(cache=cache, storage=None)
        await tiles.set(key(), b"z", media_type="image/png")
        assert await tiles.get(key()) == (b"z", "memory")
        assert await tiles.invalidate(namespace="samsyn", layer_id="layer-1") == 0
        assert await tiles.get(key()) is None
    finally:
        await cache.clear()
        await cache.close()


async def test_second_hit_admission(tiles: TileCache) -> None:
    async def render() -> bytes:
        return b"seen-twice"

    k = key(layer_id="second-hit")
    await tiles.get_or_render(k, media_type="image/png", render=render, persist="second-hit")
    await flush_pending()
    assert tiles.storage is not None
    assert not await tiles.storage.exists(k.storage_key)  # seen once: tier 1 only
    hit = await tiles.get_or_render(k, media_type="image/png", render=render, persist="second-hit")
    assert hit.hit == "memory"
    await flush_pending()
    assert await tiles.storage.get(k.storage_key) == b"seen-twice"


def request(if_none_match: str | None = None) -> Request:
    headers = [] if if_none_match is None else [(b"if-none-match", if_none_match.encode())]
    return Request({"type": "http", "method": "GET", "path": "/t", "headers": headers})


class Renderer:
    """A tile's render function that counts its calls."""

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return self.content


PUBLIC = CachePolicy(max_age=60, public=True, tags=("layer:a",))


async def test_serve_200_with_caching_headers_then_from_the_cache(tiles: TileCache) -> None:
    render, k = Renderer(b"tile"), key()
    first = await serve(request(), k, render, PUBLIC, media_type="application/x-test", tiles=tiles)
    assert first.status_code == 200 and first.body == b"tile"
    assert first.headers["etag"] == k.etag
    assert first.headers["cache-control"] == "public, max-age=60"
    assert first.headers["content-type"] == "application/x-test"
    assert first.headers["x-tile-cache"] == "miss"
    again = await serve(request(), k, render, PUBLIC, media_type="application/x-test", tiles=tiles)
    assert again.body == b"tile" and again.headers["x-tile-cache"] == "memory"
    assert render.calls == 1
    uncached = await serve(request(), k, render, PUBLIC, media_type="x/y", tiles=None)
    assert uncached.body == b"tile" and uncached.headers["x-tile-cache"] == "miss"
    assert render.calls == 2


@pytest.mark.parametrize("header", ["{etag}", "W/{etag}", '"x", {etag}', "*"])
async def test_serve_304_renders_and_looks_up_nothing(header: str) -> None:
    render, k = Renderer(b"tile"), key()
    sent = request(header.format(etag=k.etag))
    response = await serve(sent, k, render, PUBLIC, media_type="x/y", tiles=None)
    assert response.status_code == 304 and response.body == b""
    assert response.headers["etag"] == k.etag
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["x-tile-cache"] == "client"
    assert "content-type" not in response.headers
    assert render.calls == 0


async def test_serve_other_etag_is_200() -> None:
    response = await serve(
        request('"old"'), key(), Renderer(b"t"), PUBLIC, media_type="x/y", tiles=None
    )
    assert response.status_code == 200


async def test_serve_empty_tile_is_204_with_caching_headers(tiles: TileCache) -> None:
    k = key()
    for _ in range(2):  # rendered, then from the cache
        response = await serve(request(), k, Renderer(b""), PUBLIC, media_type="x/y", tiles=tiles)
        assert response.status_code == 204 and response.body == b""
        assert "content-type" not in response.headers
        assert response.headers["etag"] == k.etag
    assert (
        await serve(request(k.etag), k, Renderer(b""), PUBLIC, media_type="x/y", tiles=None)
    ).status_code == 304


@pytest.mark.parametrize(
    ("policy", "cache_control", "admitted"),
    [
        (PUBLIC, "public, max-age=60", True),
        (CachePolicy(max_age=60, public=True), "public, max-age=60", False),  # no tags
        (CachePolicy(max_age=300, tags=("layer:a",)), "private, max-age=300", False),
        (CachePolicy(max_age=3600), "private, max-age=3600", False),
    ],
)
async def test_the_policy_alone_sets_cache_control_and_admits_to_the_fast_lane(
    policy: CachePolicy, cache_control: str, admitted: bool
) -> None:
    sent = request()
    response = await serve(sent, key(), Renderer(b"t"), policy, media_type="x/y", tiles=None)
    assert response.headers["cache-control"] == cache_control
    assert (fast_lane.SCOPE_KEY in sent.scope) is admitted
