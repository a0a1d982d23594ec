"""Fixtures of the core tests: the realtime hub on each backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.conftest import PG_DATABASE, base_settings, create_pg_database
from worldbase.core.realtime import Hub, MemoryHub, RedisHub

NAMESPACE = f"worldbase-test-{os.getpid()}"


@pytest.fixture(params=["memory", "redis"])
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[Hub]:
    """An in-process hub and a Redis hub (namespaced to this test process), started."""
    instance: Hub
    if request.param == "redis":
        instance = RedisHub(request.getfixturevalue("redis_url"), namespace=NAMESPACE)
    else:
        instance = MemoryHub()
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


@pytest.fixture(scope="session")
def migrated_pg(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated PostGIS database of its own, whatever the backend run (the outage tests
    put PostgreSQL itself at fault)."""
    from worldbase.core.migrate import upgrade_head

    url = create_pg_database(f"{PG_DATABASE}_outages_{os.getpid()}")
    upgrade_head(base_settings(tmp_path_factory.mktemp("mig"), database_url=url))
    return url
