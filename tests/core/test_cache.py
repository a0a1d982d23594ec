"""The cache contract on the in-process LRU and on Redis, plus each backend's own guarantees."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from worldbase.core.cache import Cache, MemoryCache, RedisCache, create_cache
from worldbase.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        store: Cache = RedisCache(url, namespace=f"wb:test:{uuid.uuid4().hex[:8]}:")
    else:
        store = MemoryCache(max_items=100)
    yield store
    await store.clear()
    await store.close()


async def test_set_get_delete(cache: Cache) -> None:
    assert await cache.get("missing") is None
    await cache.set("a", b"\x00binary\xff")
    assert await cache.get("a") == b"\x00binary\xff"
    await cache.set("a", b"replaced", ttl=60)
    assert await cache.get("a") == b"replaced"
    await cache.delete("a")
    assert await cache.get("a") is None
    await cache.delete("a")  # deleting a missing key is fine


async def test_delete_prefix_and_clear(cache: Cache) -> None:
    for key in ["tiles:1:a", "tiles:1:b", "tiles:10:c", "tiles:2:d", "scene:x", "t*les:1"]:
        await cache.set(key, key.encode())
    await cache.delete_prefix("tiles:1:")
    assert await cache.get("tiles:1:a") is None
    assert await cache.get("tiles:1:b") is None
    assert await cache.get("tiles:10:c") == b"tiles:10:c"
    # Glob characters in a prefix are literal, not patterns.
    await cache.delete_prefix("t*")
    assert await cache.get("t*les:1") is None
    assert await cache.get("tiles:2:d") == b"tiles:2:d"
    await cache.clear()
    for key in ["tiles:10:c", "tiles:2:d", "scene:x"]:
        assert await cache.get(key) is None


async def test_non_positive_ttl_is_a_programming_error(cache: Cache) -> None:
    with pytest.raises(ValueError):
        await cache.set("k", b"v", ttl=0)


async def test_memory_ttl_with_injected_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_items=10, default_ttl=100, clock=clock)
    await cache.set("short", b"1", ttl=1)
    await cache.set("default", b"2")
    clock.now += 0.5
    assert await cache.get("short") == b"1"
    clock.now += 0.6
    assert await cache.get("short") is None
    assert await cache.get("default") == b"2"
    clock.now += 100
    assert await cache.get("default") is None
    assert len(cache) == 0


async def test_memory_lru_eviction_by_count() -> None:
    cache = MemoryCache(max_items=3)
    for key in "abc":
        await cache.set(key, key.encode())
    assert await cache.get("a") == b"a"  # touch: "b" is now least recently used
    await cache.set("d", b"d")
    assert await cache.get("b") is None
    assert [await cache.get(k) for k in "acd"] == [b"a", b"c", b"d"]
    assert len(cache) == 3


async def test_memory_lru_eviction_by_bytes() -> None:
    cache = MemoryCache(max_items=100, max_bytes=10)
    await cache.set("a", b"12345")
    await cache.set("b", b"12345")
    await cache.set("c", b"1")
    assert await cache.get("a") is None
    assert await cache.get("b") == b"12345"
    await cache.set("huge", b"x" * 11)  # bigger than the whole cache: not stored
    assert await cache.get("huge") is None
    assert await cache.get("b") == b"12345"


async def test_redis_ttl_expires(redis_url: str) -> None:
    cache = RedisCache(redis_url, namespace=f"wb:test:{uuid.uuid4().hex[:8]}:")
    try:
        await cache.set("short", b"1", ttl=1)
        await cache.set("long", b"2")
        assert 0 < await cache.redis.pttl(cache.namespace + "0:short") <= 1000
        assert await cache.redis.ttl(cache.namespace + "0:long") > 3000  # default TTL applied
        await asyncio.sleep(1.1)
        assert await cache.get("short") is None
        assert await cache.get("long") == b"2"
    finally:
        await cache.clear()
        await cache.close()


async def test_redis_namespaces_are_isolated(redis_url: str) -> None:
    run = uuid.uuid4().hex[:8]
    first = RedisCache(redis_url, namespace=f"wb:test:{run}:one:")
    second = RedisCache(redis_url, namespace=f"wb:test:{run}:two:")
    outsider = aioredis.Redis.from_url(redis_url)
    try:
        await outsider.set(f"wb:test:{run}:outside", b"keep")
        await first.set("k", b"first")
        await second.set("k", b"second")
        assert await first.get("k") == b"first"
        assert await second.get("k") == b"second"
        await first.clear()
        assert await first.get("k") is None
        assert await second.get("k") == b"second"
        assert await outsider.get(f"wb:test:{run}:outside") == b"keep"
    finally:
        await second.clear()
        await outsider.delete(f"wb:test:{run}:outside")
        await outsider.aclose()  # type: ignore[attr-defined]
        await first.close()
        await second.close()


async def test_create_cache_follows_settings(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    memory = create_cache(make_settings(redis_url=None, cache_default_ttl_seconds=5))
    assert isinstance(memory, MemoryCache) and memory.default_ttl == 5
    redis_cache = create_cache(make_settings(redis_url=redis_url))
    try:
        assert isinstance(redis_cache, RedisCache)
        assert redis_cache.namespace == "wb:cache:"
    finally:
        await redis_cache.close()
