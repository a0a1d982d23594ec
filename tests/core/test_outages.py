"""Outages of the parts the API depends on: requests get 503 + Retry-After (never 500), in
the error shape, and everything recovers by itself when the part is back.

Real parts fail here: a throwaway `redis-server` stopped and frozen, PostgreSQL behind a
proxy that drops every connection (a restart), a moto S3 server frozen with SIGSTOP.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
import redis
import sqlalchemy
from botocore.config import Config
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import base_settings, free_port
from tests.core.faults import MotoServer, RedisServer, TcpProxy
from worldbase.core.cache import RedisCache
from worldbase.core.errors import UNAVAILABLE_RETRY_AFTER_SECONDS
from worldbase.core.outages import unavailable_part
from worldbase.core.ratelimit import RateLimiter
from worldbase.core.realtime import ACCESS_CHANGED, RedisHub
from worldbase.core.storage_s3 import S3Storage
from worldbase.settings import Settings


def assert_unavailable(response: Any, part: str) -> None:
    """503, Retry-After, the one error shape, the part named and nothing internal."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    body = response.json()
    assert body["status"] == "error" and body["code"] == 503
    assert body["message"].lower().startswith(f"{part} unavailable")
    assert body["detail"] == {"unavailable": part, "retry_after": UNAVAILABLE_RETRY_AFTER_SECONDS}
    for internal in ("Traceback", "asyncpg", "127.0.0.1", "redis://", "botocore"):
        assert internal not in response.text


# --- What counts as an outage ----------------------------------------------------------------


def _raised(fn: Callable[[], Any]) -> BaseException:
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError("expected an error")


def test_real_connection_errors_name_their_part() -> None:
    dead = free_port()
    pg = _raised(
        lambda: asyncio.run(asyncpg.connect(f"postgresql://x@127.0.0.1:{dead}/x", timeout=2))
    )
    assert isinstance(pg, OSError)  # asyncpg lets the refused connect through as it is
    assert unavailable_part(pg) == "database"

    async def through_sqlalchemy() -> None:
        engine = create_async_engine(f"postgresql+asyncpg://x@127.0.0.1:{dead}/x")
        try:
            async with engine.connect() as conn:
                await conn.execute(sqlalchemy.text("SELECT 1"))
        finally:
            await engine.dispose()

    assert unavailable_part(_raised(lambda: asyncio.run(through_sqlalchemy()))) == "database"

    client = redis.Redis(port=dead, socket_connect_timeout=1)
    assert unavailable_part(_raised(client.ping)) == "cache"

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{dead}",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    assert unavailable_part(_raised(lambda: s3.head_bucket(Bucket="outage-test"))) == "storage"


def test_bugs_stay_bugs() -> None:
    assert unavailable_part(ValueError("bad")) is None
    assert unavailable_part(FileNotFoundError("/nope")) is None
    assert unavailable_part(KeyError("k")) is None
    # A timeout raised by our own code (not under a client library) is not an outage.
    assert unavailable_part(_raised(lambda: (_ for _ in ()).throw(TimeoutError()))) is None
    wrapped = RuntimeError("while saving")
    wrapped.__cause__ = redis.ConnectionError("refused")
    assert unavailable_part(wrapped) == "cache"
    group = ExceptionGroup("tasks", [ValueError("x"), redis.TimeoutError("slow")])
    assert unavailable_part(group) == "cache"


# --- PostgreSQL restart ----------------------------------------------------------------------


@pytest.fixture
def pg_proxy(migrated_pg: str) -> Iterator[tuple[TcpProxy, str]]:
    url = sqlalchemy.make_url(migrated_pg)
    proxy = TcpProxy(url.port or 5432)
    proxy.up()
    try:
        yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
    finally:
        proxy.close()


def test_database_restart_is_503_then_recovers(
    pg_proxy: tuple[TcpProxy, str],
    app_factory: Callable[[Settings], TestClient],
    tmp_path: Path,
) -> None:
    proxy, url = pg_proxy
    settings = base_settings(
        tmp_path / "data", database_url=url, worldbase_inline_worker=False, database_pool_size=2
    )
    client = app_factory(settings)

    def characters() -> Any:  # a query no cache answers
        return client.get("/api/characters", params={"q": uuid.uuid4().hex})

    assert characters().status_code == 200  # the pool now holds a live connection
    proxy.down()  # the server "restarts": every connection dropped, new ones refused
    started = time.monotonic()
    for _ in range(3):
        assert_unavailable(characters(), "database")
    assert time.monotonic() - started < 5  # refused fast: no request waits on a dead server
    proxy.up()
    # The same process serves again: the pool dropped its dead connections (pre-ping).
    assert characters().status_code == 200
    assert characters().status_code == 200


# --- Redis: cache, rate limits, job queue, events ----------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.thaw() if server.proc else None
        server.stop()


async def test_cache_skips_a_dead_redis_and_comes_back(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, timeout=0.5, probe_seconds=0.2)
    try:
        await cache.set("k", b"v")
        redis_server.stop()
        started = time.monotonic()
        assert await cache.get("k") is None  # a miss, not an error
        await cache.set("k", b"w")  # skipped
        assert await cache.get("k") is None
        assert time.monotonic() - started < 2
        redis_server.start()  # empty: it kept nothing
        await asyncio.sleep(0.3)  # past the probe interval
        await cache.set("k", b"again")
        assert await cache.get("k") == b"again"
    finally:
        await cache.close()


async def test_frozen_redis_costs_one_timeout_not_one_per_request(
    redis_server: RedisServer,
) -> None:
    cache = RedisCache(redis_server.url, timeout=0.5, probe_seconds=5)
    try:
        await cache.set("k", b"v")
        redis_server.freeze()
        started = time.monotonic()
        for _ in range(20):
            assert await cache.get("k") is None
        assert time.monotonic() - started < 1.5
    finally:
        redis_server.thaw()
        await cache.close()


async def test_invalidation_lost_in_an_outage_is_not_served_stale(
    redis_server: RedisServer,
) -> None:
    """Redis keeps its data across the outage (frozen, not restarted): an entry whose
    delete failed meanwhile must not be served afterwards, by this process nor by another
    that never noticed the outage."""
    writer = RedisCache(redis_server.url, timeout=0.5, probe_seconds=0.2)
    other = RedisCache(redis_server.url, timeout=0.5, probe_seconds=0.2)
    try:
        await writer.set("tile", b"old")
        await writer.set("list", b"old")
        assert await other.get("tile") == b"old"
        redis_server.freeze()
        await writer.delete("tile")  # the edit's invalidation, lost
        await writer.delete_prefix("li")
        redis_server.thaw()
        # No request reaches `writer`: its background probe moves the epoch by itself.
        deadline = time.monotonic() + 5
        while await other.get("tile") is not None:
            assert time.monotonic() < deadline, "stale entry served after the outage"
            await asyncio.sleep(0.05)
        assert await other.get("list") is None
        assert await writer.get("tile") is None
        await other.set("tile", b"new")  # caching works again, for both
        assert await writer.get("tile") == b"new"
    finally:
        redis_server.thaw()
        await writer.close()
        await other.close()


async def test_rate_limits_hold_per_process_while_redis_is_down(
    redis_server: RedisServer,
) -> None:
    limiter = RateLimiter(redis_url=redis_server.url, key_prefix="t", timeout=0.5)
    limiter.probe_seconds = 0.2
    try:
        assert (await limiter.hit("login:1.2.3.4", "2/minute")).allowed
        redis_server.stop()
        # Fail-open would let a brute force through; failing closed would lock everyone out.
        first = await limiter.hit("login:1.2.3.4", "2/minute")
        second = await limiter.hit("login:1.2.3.4", "2/minute")
        third = await limiter.hit("login:1.2.3.4", "2/minute")
        assert first.allowed and second.allowed and not third.allowed
        assert third.retry_after_seconds > 0
        redis_server.start()
        await asyncio.sleep(0.3)
        assert (await limiter.hit("login:5.6.7.8", "2/minute")).allowed
        assert limiter.outage.down is False  # counted in Redis again
    finally:
        await limiter.close()


async def test_hub_resumes_after_a_redis_restart(redis_server: RedisServer) -> None:
    """Process A's subscription gets process B's events again once Redis is back; a publish
    during the outage does not raise (the write that caused it is committed)."""
    a = RedisHub(redis_server.url, namespace="t", max_backoff=0.5, timeout=0.5)
    b = RedisHub(redis_server.url, namespace="t", max_backoff=0.5, timeout=0.5)
    await a.start()
    await b.start()
    subscription = a.subscribe("maps:1")
    try:
        await subscription.ready(within=5)
        await b.publish("maps:1", {"n": 1})
        assert await asyncio.wait_for(anext(subscription), 5) == {"n": 1}
        redis_server.stop()
        await b.publish("maps:1", {"n": 2})  # dropped, logged, not raised
        b.publish_threadsafe("maps:1", {"n": 2})
        redis_server.start()
        # The subscriber first hears that events may have been missed...
        resumed = await asyncio.wait_for(anext(subscription), 10)
        assert resumed == {"type": ACCESS_CHANGED, "resumed": True}
        # ...then gets B's events again, without anyone re-subscribing.
        await subscription.ready(within=5)
        await b.publish("maps:1", {"n": 3})
        assert await asyncio.wait_for(anext(subscription), 5) == {"n": 3}
    finally:
        subscription.close()
        await a.stop()
        await b.stop()


def test_redis_outage_degrades_reads_and_refuses_jobs(
    redis_server: RedisServer,
    migrated_pg: str,
    app_factory: Callable[[Settings], TestClient],
    tmp_path: Path,
) -> None:
    from tests.core.test_jobs import NAMESPACE  # registers the test.* job kinds

    settings = base_settings(
        tmp_path / "data",
        database_url=migrated_pg,
        redis_url=redis_server.url,
        worldbase_inline_worker=False,
        worldbase_redis_timeout=0.5,
        worldbase_namespace=NAMESPACE,
    )
    client = app_factory(settings)
    services: Any = client.app.state.services  # type: ignore[attr-defined]
    assert client.get("/api/characters").status_code == 200
    redis_server.stop()
    # Cached reads compute and serve; rate-limited routes answer (a wrong password is 401).
    assert client.get("/api/characters").status_code == 200
    login = client.post("/api/auth/login", json={"email": "a@b.org", "password": "wrong-pass"})
    assert login.status_code in (401, 422), login.text
    # A job cannot be queued: 503 and the row is not left queued forever.
    with pytest.raises(Exception) as refused:
        client.portal.call(  # type: ignore[union-attr]
            lambda: services.jobs.enqueue(kind="test.echo", params={})
        )
    assert refused.value.status_code == 503 and refused.value.headers["Retry-After"]
    jobs, _ = client.portal.call(lambda: services.jobs.list(kind="test.echo"))  # type: ignore[union-attr]
    assert [job.status for job in jobs] == ["failed"]
    assert jobs[0].error == "could not be queued"
    redis_server.start()
    job = client.portal.call(lambda: services.jobs.enqueue(kind="test.echo", params={}))  # type: ignore[union-attr]
    assert job.status == "queued"


# --- S3 frozen or gone -----------------------------------------------------------------------


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path / "moto.log")
    try:
        yield server
    finally:
        server.close()


async def test_frozen_s3_is_503_within_the_bound_then_recovers(moto: MotoServer) -> None:
    storage = S3Storage(
        bucket="outage-test",
        endpoint_url=moto.url,
        access_key_id="x",
        secret_access_key="x",
        timeout=1.0,
    )
    try:
        await asyncio.to_thread(storage.client.create_bucket, Bucket="outage-test")
        await storage.put("a.txt", b"one")
        moto.freeze()
        started = time.monotonic()
        with pytest.raises(Exception) as frozen:
            await storage.put("b.txt", b"two")
        assert unavailable_part(frozen.value) == "storage"
        assert time.monotonic() - started < 4 * 1.0 + 1.5  # 2 attempts, a PUT reads twice
        started = time.monotonic()
        with pytest.raises(Exception) as frozen:
            await storage.get("a.txt")
        assert unavailable_part(frozen.value) == "storage"
        assert time.monotonic() - started < 2 * 1.0 + 1.5
        moto.thaw()
        assert await storage.get("a.txt") == b"one"
    finally:
        moto.thaw()
        await storage.close()


def test_upload_while_s3_is_frozen_is_503_and_writes_no_row(
    moto: MotoServer,
    migrated_pg: str,
    app_factory: Callable[[Settings], TestClient],
    tmp_path: Path,
) -> None:
    from tests.apps.bestiary.conftest import TROLL, png
    from tests.builders import auth_headers, register_user

    bucket = f"outage-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=moto.url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    settings = base_settings(
        tmp_path / "data",
        database_url=migrated_pg,
        storage_backend="s3",
        storage_bucket=bucket,
        aws_endpoint_url=moto.url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        worldbase_storage_timeout=1.0,
        worldbase_inline_worker=False,
    )
    client = app_factory(settings)
    _, token = register_user(client, admin=True)
    admin = auth_headers(token)
    created = client.post("/api/characters", json=TROLL | {"name": uuid.uuid4().hex}, headers=admin)
    assert created.status_code == 201, created.text
    url = f"/api/characters/{created.json()['id']}"

    moto.freeze()
    try:
        started = time.monotonic()
        refused = client.put(f"{url}/image", files={"file": ("a.png", png())}, headers=admin)
        assert_unavailable(refused, "storage")
        assert time.monotonic() - started < 4 * 1.0 + 3
    finally:
        moto.thaw()
    # The row was not pointed at an object that was never written.
    assert client.get(url).json()["image_path"] is None
    stored = client.put(f"{url}/image", files={"file": ("a.png", png())}, headers=admin)
    assert stored.status_code == 200, stored.text
    assert client.get(f"{url}/image").status_code == 200


def test_edit_during_a_redis_outage_is_not_hidden_by_the_cache_after_it(
    redis_server: RedisServer,
    migrated_pg: str,
    app_factory: Callable[[Settings], TestClient],
    tmp_path: Path,
) -> None:
    """A character page cached in Redis, edited while Redis is frozen (its invalidation is
    lost, Redis keeps the old page): once Redis is back, the edit is what is served."""
    from tests.apps.bestiary.conftest import TROLL
    from tests.builders import auth_headers, register_user

    settings = base_settings(
        tmp_path / "data",
        database_url=migrated_pg,
        redis_url=redis_server.url,
        worldbase_inline_worker=False,
        worldbase_redis_timeout=0.5,
    )
    client = app_factory(settings)
    _, token = register_user(client, admin=True)
    admin = auth_headers(token)
    created = client.post("/api/characters", json=TROLL | {"name": "Before"}, headers=admin)
    url = f"/api/characters/{created.json()['id']}"
    assert client.get(url).json()["name"] == "Before"
    assert client.get(url).headers.get("x-cache", "hit").lower() != "miss"  # cached now

    redis_server.freeze()
    try:
        edited = client.put(url, json=TROLL | {"name": "After"}, headers=admin)
        assert edited.status_code == 200, edited.text  # committed; the cache is skipped
        assert client.get(url).json()["name"] == "After"
    finally:
        redis_server.thaw()
    time.sleep(1.5)  # past the cache's probe interval
    assert client.get(url).json()["name"] == "After"
