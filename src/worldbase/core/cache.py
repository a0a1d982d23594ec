"""Byte-value cache with per-key TTL: in-process LRU by default, Redis when `REDIS_URL` is set.

`ttl=None` means the cache's default TTL (`CACHE_DEFAULT_TTL_SECONDS`), so nothing lives
forever by accident; keys are plain strings, values bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

from worldbase.core.outages import REDIS_DOWN, OutageLog
from worldbase.settings import Settings

log = logging.getLogger("worldbase.cache")

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


# Every key lives under the current epoch, read in the same round trip (Lua): bumping the
# epoch makes everything cached before it unreachable at once, in every process.
_GET = """
local epoch = redis.call('GET', KEYS[1]) or '0'
return redis.call('GET', ARGV[1] .. epoch .. ':' .. ARGV[2])
"""
_SET = """
local epoch = redis.call('GET', KEYS[1]) or '0'
return redis.call('SET', ARGV[1] .. epoch .. ':' .. ARGV[2], ARGV[3], 'EX', ARGV[4])
"""
_DELETE = """
local epoch = redis.call('GET', KEYS[1]) or '0'
return redis.call('UNLINK', ARGV[1] .. epoch .. ':' .. ARGV[2])
"""


class RedisCache:
    """Keys live under `namespace` and the cache epoch; `clear()` removes only those (never
    FLUSHDB).

    Fails soft: while Redis is unreachable every read is a miss and writes are skipped, so
    requests compute and serve (logged once per outage). A lost invalidation must not let
    an entry cached before it be served once Redis is back (a restart with persistence, a
    partition): a process that saw the outage bumps the epoch when Redis answers again,
    before anything else, so entries from before the outage are never read again. While
    down, Redis is probed at most once per `probe_seconds` (requests do not each wait for a
    timeout); a process that lost an invalidation also probes in the background, so the
    epoch moves even if no request comes.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "wb:cache:",
        default_ttl: int = DEFAULT_TTL_SECONDS,
        timeout: float = 2.0,
        probe_seconds: float = 1.0,
    ):
        self.namespace = namespace
        self.epoch_key = namespace.rstrip(":") + "-epoch"
        self.default_ttl = default_ttl
        self.probe_seconds = probe_seconds
        self.redis = aioredis.Redis.from_url(
            url,
            decode_responses=False,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
        )
        self._get = self.redis.register_script(_GET)
        self._set = self.redis.register_script(_SET)
        self._delete = self.redis.register_script(_DELETE)
        self.outage = OutageLog("cache", logger=log)
        self._next_probe = 0.0
        self._prober: asyncio.Task[None] | None = None

    async def _available(self) -> bool:
        """False while Redis is known down (probing it now and then); after an outage,
        the epoch is bumped before the first command goes through."""
        if not self.outage.down:
            return True
        now = time.monotonic()
        if now < self._next_probe:
            return False
        self._next_probe = now + self.probe_seconds
        try:
            await self.redis.incr(self.epoch_key)
        except REDIS_DOWN:
            return False
        self.outage.recovered()
        return True

    def _failed(self, exc: BaseException, *, invalidation: bool = False) -> None:
        self.outage.failed(exc, "; caching is skipped until it is back")
        self._next_probe = time.monotonic() + self.probe_seconds
        if invalidation and (self._prober is None or self._prober.done()):
            self._prober = asyncio.create_task(self._probe(), name="cache-epoch-probe")

    async def _probe(self) -> None:
        while self.outage.down:
            await asyncio.sleep(self.probe_seconds)
            self._next_probe = 0.0
            await self._available()

    async def get(self, key: str) -> bytes | None:
        if not await self._available():
            return None
        try:
            value = await self._get(keys=[self.epoch_key], args=[self.namespace, key])
        except REDIS_DOWN as exc:
            self._failed(exc)
            return None
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        seconds = _ttl(ttl, self.default_ttl)
        if not await self._available():
            return
        try:
            await self._set(keys=[self.epoch_key], args=[self.namespace, key, value, seconds])
        except REDIS_DOWN as exc:
            self._failed(exc)

    async def delete(self, key: str) -> None:
        if not await self._available():
            self._failed(ConnectionError("down"), invalidation=True)
            return
        try:
            await self._delete(keys=[self.epoch_key], args=[self.namespace, key])
        except REDIS_DOWN as exc:
            self._failed(exc, invalidation=True)

    async def delete_prefix(self, prefix: str) -> None:
        if not await self._available():
            self._failed(ConnectionError("down"), invalidation=True)
            return
        try:
            await self._delete_prefix(prefix)
        except REDIS_DOWN as exc:
            self._failed(exc, invalidation=True)

    async def _delete_prefix(self, prefix: str) -> None:
        # Every epoch's keys (older ones are unreachable anyway: this just frees them).
        # SCAN, not KEYS: it never blocks the server on a large keyspace.
        pattern = _glob_escape(self.namespace) + "*:" + _glob_escape(prefix) + "*"
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
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
        await self.redis.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5


def create_cache(settings: Settings) -> Cache:
    if settings.redis_url:
        return RedisCache(
            settings.redis_url,
            default_ttl=settings.cache_default_ttl_seconds,
            timeout=settings.worldbase_redis_timeout,
        )
    return MemoryCache(default_ttl=settings.cache_default_ttl_seconds)
