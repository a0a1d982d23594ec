"""Fixtures of the core tests: the realtime hub on each backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

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
