"""Rate limits in memory and in Redis, and the `rate_limit` dependency's 429 answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace

import httpx
import pytest
from fastapi import Depends, FastAPI

from worldbase.core.errors import install_error_handlers
from worldbase.core.ratelimit import RateLimiter, create_rate_limiter, rate_limit
from worldbase.settings import Settings


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        made = RateLimiter(redis_url=url, key_prefix=f"wb:test-limits:{uuid.uuid4().hex[:8]}")
    else:
        made = RateLimiter()
    yield made
    await made.reset()
    await made.close()


async def test_n_allowed_then_refused(limiter: RateLimiter) -> None:
    results = [await limiter.hit("client-a", "3/minute") for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    assert [r.retry_after_seconds for r in results[:3]] == [0, 0, 0]
    assert 0 < results[3].retry_after_seconds <= 60


async def test_keys_and_limits_are_independent(limiter: RateLimiter) -> None:
    for _ in range(2):
        assert (await limiter.hit("a", "2/minute")).allowed
    assert not (await limiter.hit("a", "2/minute")).allowed
    assert (await limiter.hit("b", "2/minute")).allowed
    # Another limit string on the same key counts separately.
    assert (await limiter.hit("a", "5/hour")).allowed


async def test_reset_forgets_counts(limiter: RateLimiter) -> None:
    await limiter.hit("a", "1/minute")
    assert not (await limiter.hit("a", "1/minute")).allowed
    await limiter.reset()
    assert (await limiter.hit("a", "1/minute")).allowed


async def test_malformed_limit_is_an_error(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError):
        await limiter.hit("a", "often")


async def test_redis_workers_share_counts_and_prefixes_isolate(redis_url: str) -> None:
    prefix = f"wb:test-limits:{uuid.uuid4().hex[:8]}"
    worker_a = RateLimiter(redis_url=redis_url, key_prefix=prefix)
    worker_b = RateLimiter(redis_url=redis_url, key_prefix=prefix)
    other = RateLimiter(redis_url=redis_url, key_prefix=prefix + "-other")
    try:
        assert (await worker_a.hit("ip", "2/minute")).allowed
        second = await worker_b.hit("ip", "2/minute")
        assert second.allowed and second.remaining == 0
        refused = await worker_a.hit("ip", "2/minute")
        assert not refused.allowed and refused.retry_after_seconds > 0
        assert (await other.hit("ip", "1/minute")).allowed
        await worker_a.reset()  # clears the shared prefix only
        assert (await worker_b.hit("ip", "2/minute")).allowed
        assert not (await other.hit("ip", "1/minute")).allowed
    finally:
        for made in (worker_a, worker_b, other):
            await made.reset()
            await made.close()


async def test_create_rate_limiter_follows_settings(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    assert create_rate_limiter(make_settings(redis_url=None)).redis_url is None
    assert create_rate_limiter(make_settings(redis_url=redis_url)).redis_url == redis_url


# --- The dependency on a tiny app -------------------------------------------------------------


def tiny_app(limiter: RateLimiter, settings: Settings) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.services = SimpleNamespace(limiter=limiter, settings=settings)

    @app.post("/login", dependencies=[Depends(rate_limit("login", lambda s: s.login_rate_limit))])
    async def login() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/images", dependencies=[Depends(rate_limit("images", "1/minute"))])
    async def images() -> dict[str, bool]:
        return {"ok": True}

    return app


def http_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_dependency_answers_429_in_the_error_shape(
    limiter: RateLimiter, make_settings: Callable[..., Settings]
) -> None:
    app = tiny_app(limiter, make_settings(login_rate_limit="2/minute"))
    async with http_client(app) as client:
        assert (await client.post("/login")).status_code == 200
        assert (await client.post("/login")).status_code == 200
        refused = await client.post("/login")
        # Scopes are independent: the images budget is untouched by logins.
        assert (await client.get("/images")).status_code == 200
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < retry_after <= 60
    assert refused.json() == {
        "status": "error",
        "code": 429,
        "message": "Rate limit exceeded: 2/minute",
        "detail": {"limit": "2/minute", "retry_after": retry_after},
    }


async def test_forwarded_for_is_ignored_unless_proxies_are_trusted(
    limiter: RateLimiter, make_settings: Callable[..., Settings]
) -> None:
    app = tiny_app(limiter, make_settings())
    async with http_client(app) as client:
        first = await client.get("/images", headers={"X-Forwarded-For": "203.0.113.1"})
        spoofed = await client.get("/images", headers={"X-Forwarded-For": "203.0.113.2"})
    assert first.status_code == 200
    assert spoofed.status_code == 429  # a made-up header does not buy a fresh budget


async def test_trusted_proxy_hop_is_the_key(
    limiter: RateLimiter, make_settings: Callable[..., Settings]
) -> None:
    app = tiny_app(limiter, make_settings(trusted_proxy_count=1))

    async def get(forwarded: str) -> int:
        async with http_client(app) as client:
            response = await client.get("/images", headers={"X-Forwarded-For": forwarded})
        return response.status_code

    assert await get("198.51.100.7") == 200
    assert await get("198.51.100.8") == 200  # another client behind the proxy
    # The proxy appends the real peer; what the client wrote to the left is not trusted.
    assert await get("10.9.9.9, 198.51.100.7") == 429
    assert await get("not-an-ip") == 200  # falls back to the socket peer's own budget
    assert await get("garbage") == 429
