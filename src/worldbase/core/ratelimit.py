"""Rate limits: a moving-window limiter on the `limits` library, in memory or in Redis.

With Redis every worker shares the counts, so "10/minute" means ten per minute for the
whole deployment. Routes use `Depends(rate_limit("scope", "10/minute"))`, keyed by client IP.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from worldbase.core.errors import RateLimited
from worldbase.core.outages import REDIS_DOWN, OutageLog
from worldbase.settings import Settings

KEY_PREFIX = "wb:limits"
log = logging.getLogger("worldbase.ratelimit")


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    retry_after_seconds: int  # 0 when allowed
    remaining: int


@functools.lru_cache(maxsize=256)
def parse_limit(limit: str) -> RateLimitItem:
    """'10/minute', '5 per second', ... ; a malformed limit is a configuration error."""
    return parse(limit)


def _async_uri(url: str) -> str:
    # limits names its asyncio Redis storage by scheme: redis:// -> async+redis://.
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url


class RateLimiter:
    """Moving-window limiter; the storage is built on first use, inside the running loop."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        key_prefix: str = KEY_PREFIX,
        timeout: float = 2.0,
        probe_seconds: float = 1.0,
    ):
        self.redis_url = redis_url
        self.key_prefix = key_prefix
        self.timeout = timeout
        self.probe_seconds = probe_seconds
        self._storage: MemoryStorage | RedisStorage | None = None
        self._strategy: MovingWindowRateLimiter | None = None
        self._pool: aioredis.ConnectionPool | None = None
        # While Redis is down: counts kept in this process (see `hit`).
        self._local: RateLimiter | None = None
        self.outage = OutageLog("rate-limit store", logger=log)
        self._next_probe = 0.0

    def _limiter(self) -> MovingWindowRateLimiter:
        # No await in here, so two first requests cannot both build a storage.
        if self._strategy is None:
            if self.redis_url:
                self._pool = aioredis.ConnectionPool.from_url(
                    self.redis_url,
                    socket_timeout=self.timeout,
                    socket_connect_timeout=self.timeout,
                )
                self._storage = RedisStorage(
                    _async_uri(self.redis_url),
                    implementation="redispy",  # redis-py's asyncio client; no coredis
                    key_prefix=self.key_prefix,
                    connection_pool=self._pool,  # type: ignore[arg-type]
                )
            else:
                self._storage = MemoryStorage()
            self._strategy = MovingWindowRateLimiter(self._storage)
        return self._strategy

    async def hit(self, key: str, limit: str) -> RateLimitResult:
        """Count one hit. Fails soft to this process's own counts while Redis is down
        (probed at most once per `probe_seconds`): a short outage neither refuses every
        login nor lifts the limits (each process then allows `limit` by itself)."""
        if self.redis_url is None:
            return await self._hit(key, limit)
        if self.outage.down and time.monotonic() < self._next_probe:
            return await self._local_limiter().hit(key, limit)
        try:
            result = await self._hit(key, limit)
        except REDIS_DOWN as exc:
            self.outage.failed(exc, "; limits are counted per process until it is back")
            self._next_probe = time.monotonic() + self.probe_seconds
            return await self._local_limiter().hit(key, limit)
        self.outage.recovered()
        return result

    def _local_limiter(self) -> RateLimiter:
        if self._local is None:
            self._local = RateLimiter(redis_url=None, key_prefix=self.key_prefix)
        return self._local

    async def _hit(self, key: str, limit: str) -> RateLimitResult:
        item = parse_limit(limit)
        limiter = self._limiter()
        allowed = await limiter.hit(item, key)
        stats = await limiter.get_window_stats(item, key)
        retry_after = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimitResult(allowed, retry_after, max(0, stats.remaining))

    async def reset(self) -> None:
        """Forget every count of this limiter (in Redis: only keys under its prefix)."""
        self._limiter()  # counts in Redis may predate this process's first hit
        if self._pool is None:
            assert self._storage is not None  # built by _limiter()
            await self._storage.reset()
            return
        client = aioredis.Redis(connection_pool=self._pool)
        # SCAN + UNLINK rather than limits' own reset, which uses the blocking KEYS.
        pattern = _glob_escape(self.key_prefix) + ":*"
        keys = [key async for key in client.scan_iter(match=pattern, count=500)]
        for start in range(0, len(keys), 500):
            await client.unlink(*keys[start : start + 500])

    async def close(self) -> None:
        if self._local is not None:
            await self._local.close()
            self._local = None
        if self._pool is not None:
            await self._pool.disconnect()
        timer: Any = getattr(self._storage, "timer", None)  # memory storage's expiry task
        if timer is not None and not timer.done():
            timer.cancel()
        self._storage = self._strategy = self._pool = None


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def create_rate_limiter(settings: Settings) -> RateLimiter:
    # Deployments (and test sessions) sharing one Redis keep separate counts.
    return RateLimiter(
        redis_url=settings.redis_url,
        key_prefix=f"{settings.worldbase_namespace}:limits",
        timeout=settings.worldbase_redis_timeout,
    )


def client_address(request: Request, *, trusted_proxies: int) -> str:
    """The client's IP; behind N trusted proxies, the address the outermost one saw.

    Each proxy appends the peer it saw to X-Forwarded-For, so only the last N entries
    are trustworthy; entries to their left are whatever the client sent.
    """
    peer = request.client.host if request.client else "unknown"
    if trusted_proxies <= 0:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    if not hops:
        return peer
    candidate = hops[-trusted_proxies] if len(hops) >= trusted_proxies else hops[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


def rate_limit(
    scope: str, limit: str | Callable[[Settings], str]
) -> Callable[[Request], Awaitable[None]]:
    """A dependency allowing `limit` requests per client IP for `scope`; else 429.

    `limit` may be read from settings: `rate_limit("login", lambda s: s.login_rate_limit)`.
    """

    async def dependency(request: Request) -> None:
        services = request.app.state.services
        settings: Settings = services.settings
        value = limit(settings) if callable(limit) else limit
        client = client_address(request, trusted_proxies=settings.trusted_proxy_count)
        result = await services.limiter.hit(f"{scope}:{client}", value)
        if not result.allowed:
            seconds = result.retry_after_seconds
            raise RateLimited(
                f"Rate limit exceeded: {value}",
                headers={"Retry-After": str(seconds)},
                detail={"limit": value, "retry_after": seconds},
            )

    return dependency
