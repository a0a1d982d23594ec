"""Byte-value cache with per-key TTL: in-process LRU by default, Redis when `REDIS_URL` is set.

`ttl=None` means the cache's default TTL (`CACHE_DEFAULT_TTL_SECONDS`), so nothing lives
forever by accident; keys are plain strings, values bytes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

from worldbase.settings import Settings

DEFAULT_TTL_SECONDS = 3600


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def delete_prefix(self, prefix: str) -> None: ...
    async def clear(self) -> None: ...
    async def close(self) -> None: ...


def _ttl(ttl: int | None, default: int) -> int:
    value = default if ttl is None else ttl
    if value <= 0:
        raise ValueError(f"cache TTL must be a positive number of seconds, got {value}")
    return value


class MemoryCache:
    """LRU bounded by item count and total bytes; expired items are dropped when touched.

    A lock (not an asyncio one: no await happens inside) also makes it safe for job threads.
    `clock` is injectable so tests can move time without sleeping.
    """

    def __init__(
        self,
        max_items: int = 1024,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        default_ttl: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.default_ttl = default_ttl
        self.clock = clock
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            if entry[1] <= self.clock():
                self._pop(key)
                return None
            self._items.move_to_end(key)
            return entry[0]

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        expires_at = self.clock() + _ttl(ttl, self.default_ttl)
        value = bytes(value)
        with self._lock:
            self._pop(key)
            if len(value) > self.max_bytes:
                return  # would evict everything else and still not fit
            self._items[key] = (value, expires_at)
            self._bytes += len(value)
            while len(self._items) > self.max_items or self._bytes > self.max_bytes:
                self._pop(next(iter(self._items)))

    def _pop(self, key: str) -> None:
        entry = self._items.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[0])

    async def delete(self, key: str) -> None:
        with self._lock:
            self._pop(key)

    async def delete_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k.startswith(prefix)]:
                self._pop(key)

    async def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    async def close(self) -> None:
        await self.clear()


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class RedisCache:
    """Keys live under `namespace`; `clear()` removes only those (never FLUSHDB)."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "wb:cache:",
        default_ttl: int = DEFAULT_TTL_SECONDS,
    ):
        self.namespace = namespace
        self.default_ttl = default_ttl
        self.redis = aioredis.Redis.from_url(url, decode_responses=False)

    async def get(self, key: str) -> bytes | None:
        value = await self.redis.get(self.namespace + key)
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        await self.redis.set(self.namespace + key, value, ex=_ttl(ttl, self.default_ttl))

    async def delete(self, key: str) -> None:
        await self.redis.unlink(self.namespace + key)

    async def delete_prefix(self, prefix: str) -> None:
        # SCAN, not KEYS: it never blocks the server on a large keyspace.
        pattern = _glob_escape(self.namespace + prefix) + "*"
        batch: list[bytes] = []
        async for key in self.redis.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                await self.redis.unlink(*batch)
                batch.clear()
        if batch:
            await self.redis.unlink(*batch)

    async def clear(self) -> None:
        await self.delete_prefix("")

    async def close(self) -> None:
        await self.redis.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5


def create_cache(settings: Settings) -> Cache:
    if settings.redis_url:
        return RedisCache(settings.redis_url, default_ttl=settings.cache_default_ttl_seconds)
    return MemoryCache(default_ttl=settings.cache_default_ttl_seconds)
