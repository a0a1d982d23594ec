"""Shared fixtures: real services on loopback, settings per backend, the app under test.

`WORLDBASE_TEST_BACKEND=embedded` (default) runs the app on SQLite, local storage and
in-process cache/jobs/hub; `served` runs it on PostGIS, Redis and S3 (moto's server).
Tests of a specific backend (the S3 storage, the Redis hub, the PostGIS spatial queries)
use those services in both runs. With `CI=true` a missing service fails; locally it skips.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from worldbase.settings import Settings

if TYPE_CHECKING:
    from worldbase.core.appspec import AppSpec

BACKEND = os.environ.get("WORLDBASE_TEST_BACKEND", "embedded")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_SERVER = os.environ.get("WORLDBASE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = os.environ.get("WORLDBASE_TEST_PG_DB", "worldbase_test")
REDIS_URL = os.environ.get("WORLDBASE_TEST_REDIS", "redis://127.0.0.1:6379/15")


def service_missing(what: str) -> None:
    """The one rule for a missing external service or tool (a server, a binary): it fails
    in CI and skips elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} is not reachable and CI=true requires it", pytrace=False)
    pytest.skip(f"{what} is not reachable")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


# --- Real services ---------------------------------------------------------------------------


async def _recreate_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(f"{PG_SERVER}/{name}")
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        await conn.close()


_created_databases: list[str] = []


async def _drop_databases(names: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        for name in names:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session", autouse=True)
def _drop_created_databases() -> Iterator[None]:
    yield
    if _created_databases:
        asyncio.run(_drop_databases(_created_databases))


def create_pg_database(name: str) -> str:
    """A fresh, empty PostGIS database, dropped at the end of the session; returns its URL."""
    _created_databases.append(name)
    try:
        asyncio.run(_recreate_database(name))
    except OSError:
        service_missing(f"PostgreSQL at {PG_SERVER}")
    except Exception as exc:
        if "postgis" in str(exc).lower():
            service_missing(f"PostGIS ({exc})")
        raise
    return f"{PG_SERVER}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """An empty PostGIS database for this test session (migrated by whoever uses it)."""
    return create_pg_database(f"{PG_DATABASE}_{os.getpid()}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        service_missing(f"Redis at {REDIS_URL}")
    client.flushdb()
    client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone S3-compatible server on a loopback port."""
    executable = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(executable).exists():
        service_missing("moto_server (install .[dev])")
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


# --- Settings and the app --------------------------------------------------------------------


def base_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "worldbase_env": "test",
        "worldbase_data_dir": data_dir,
        "jwt_secret": "test-secret-" + "x" * 40,
        "log_json": False,
        "database_url": None,
        "redis_url": None,
        # Schedules would enqueue jobs behind the tests' backs; tests run them explicitly.
        "worldbase_periodic_jobs": False,
        # Tests sign up many users from one client; test_auth checks the default limit.
        "register_rate_limit": "10000/minute",
        # Tests write and upload bestiary objects in quick succession; test_limits sets them.
        "bestiary_write_rate_limit": "10000/minute",
        "bestiary_upload_rate_limit": "10000/minute",
        # Tests queue several uploads in a row; tests of the limit set it themselves.
        "worldbase_max_heavy_jobs_per_user": 100,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def served_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings that point the app at PostGIS, Redis and S3 (only in the served run)."""
    if BACKEND != "served":
        return {}
    pg = request.getfixturevalue("postgres_url")
    redis_ = request.getfixturevalue("redis_url")
    s3 = request.getfixturevalue("s3_endpoint")
    bucket = f"worldbase-test-{uuid.uuid4().hex[:8]}"
    import boto3

    boto3.client(
        "s3",
        endpoint_url=s3,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    return {
        "database_url": pg,
        "redis_url": redis_,
        "storage_backend": "s3",
        "storage_bucket": bucket,
        "aws_endpoint_url": s3,
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        # Sessions sharing one Redis must not take each other's jobs or events.
        "worldbase_namespace": f"worldbase-test-{os.getpid()}",
        # The test client is the only process: it consumes its own jobs.
        "worldbase_inline_worker": True,
    }


@pytest.fixture
def make_settings(tmp_path: Path, served_overrides: dict[str, Any]) -> Callable[..., Settings]:
    """Settings for the current backend run; keyword overrides win."""

    def build(**overrides: Any) -> Settings:
        values = dict(served_overrides)
        values.update(overrides)
        return base_settings(tmp_path / "data", **values)

    return build


@pytest.fixture(scope="session")
def migrated_served(
    served_overrides: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    if served_overrides:
        from worldbase.core.migrate import upgrade_head

        upgrade_head(base_settings(tmp_path_factory.mktemp("mig"), **served_overrides))


@pytest.fixture
def settings(make_settings: Callable[..., Settings], migrated_served: None) -> Settings:
    return make_settings()


@pytest.fixture
def app_factory(migrated_served: None) -> Iterator[Callable[[Settings], TestClient]]:
    """Start apps with given settings; every one is shut down after the test."""
    from worldbase.app import create_app

    clients: list[TestClient] = []

    def start(settings: Settings, apps: Sequence[AppSpec] | None = None) -> TestClient:
        app = create_app(settings) if apps is None else create_app(settings, apps)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(
    app_factory: Callable[[Settings], TestClient], settings: Settings
) -> Iterator[TestClient]:
    """The app on the current backend with empty tables."""
    client = app_factory(settings)
    app: Any = client.app
    client.portal.call(truncate_all, app.state.services)  # type: ignore[union-attr]
    yield client


async def truncate_all(services: Any) -> None:
    from sqlalchemy import text

    from worldbase.models import metadata

    db = services.db
    async with db.engine.begin() as conn:
        tables = [t.name for t in reversed(metadata.sorted_tables)]
        if db.is_sqlite:
            for name in tables:
                await conn.execute(text(f'DELETE FROM "{name}"'))
        elif tables:
            quoted = ", ".join(f'"{name}"' for name in tables)
            await conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    await services.cache.clear()
    await services.limiter.reset()
