"""The two-tier tile cache on the current backend (memory + local files, or Redis + S3)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from worldbase.core.cache import create_cache
from worldbase.core.storage_backends import create_storage
from worldbase.geo.tile_cache import TileCache, TileKey, flush_pending, tile_key
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
