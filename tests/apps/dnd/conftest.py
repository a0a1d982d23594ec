"""Builders for the dnd tests: generate images through the API, look into storage and rows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from worldbase.apps.dnd.dependencies import DndRuntime
from worldbase.apps.dnd.providers import GenerationSpec, ProceduralProvider

GENERATE = {
    "subject_type": "item",
    "subject_name": "Flame Tongue",
    "prompt": "A longsword wreathed in fire, glowing runes on the blade",
    "aspect_ratio": "1:1",
    "component": "item-card",
}


def generate(client: TestClient, headers: dict[str, str] | None = None, **overrides: Any) -> Any:
    return client.post("/api/v1/images/generate", json={**GENERATE, **overrides}, headers=headers)


def stored_keys(client: TestClient, prefix: str = "dnd/") -> list[str]:
    storage = client.app.state.services.storage  # type: ignore[attr-defined]

    async def collect() -> list[str]:
        return [obj.key async for obj in storage.list(prefix)]

    return client.portal.call(collect)  # type: ignore[union-attr]


class CountingProvider:
    """The procedural painter, slowed down and counted (single-flight tests)."""

    name = "counting"

    def __init__(self, delay: float = 0.3, fail: Exception | None = None):
        self.calls = 0
        self.delay = delay
        self.fail = fail
        self._inner = ProceduralProvider()

    async def generate(self, spec: GenerationSpec) -> Image.Image:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return await self._inner.generate(spec)


def use_provider(client: TestClient, provider: Any) -> None:
    client.app.state.dnd = DndRuntime(provider=provider)  # type: ignore[attr-defined]


@pytest.fixture
def counting(client: TestClient) -> CountingProvider:
    provider = CountingProvider()
    use_provider(client, provider)
    return provider


def clear_storage(client: TestClient) -> None:
    """Remove this app's objects: the served run shares one bucket across the session."""
    storage = client.app.state.services.storage  # type: ignore[attr-defined]

    async def clear() -> None:
        keys = [obj.key async for obj in storage.list("dnd/")]
        for key in keys:
            await storage.delete(key)

    client.portal.call(clear)  # type: ignore[union-attr]


def reset_app(client: TestClient) -> None:
    """Empty tables, cache, rate-limit counts and storage of an app made with `app_factory`."""
    from tests.conftest import truncate_all

    client.portal.call(truncate_all, client.app.state.services)  # type: ignore[union-attr, attr-defined]
    clear_storage(client)


@pytest.fixture(autouse=True)
def _empty_storage(request: pytest.FixtureRequest) -> None:
    if "client" in request.fixturenames:
        clear_storage(request.getfixturevalue("client"))
