"""Builders for the habitats tests: callers (user, another user, anonymous, admin, a game
token), habitats and species through the API, and a small classified COG."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.builders import auth_headers, run_db
from tests.conftest import base_settings

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[10.0, 50.0], [11.0, 50.0], [11.0, 51.0], [10.0, 51.0], [10.0, 50.0]]],
}
CALLERS = ("user", "other", "anonymous", "admin")


def game_token(secret: str, sub: str | int = "game-player-1", **claims: Any) -> str:
    """A token as the game's auth issues it: HS256 with JWT_SECRET, `sub` the player."""
    body = {"sub": sub, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(body, secret, algorithm="HS256")


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return auth_headers(self.tokens[who]) if who in self.tokens else {}

    def habitat(self, **values: Any) -> dict[str, Any]:
        body = {"name": "Temperate Forest", "iucn_code": "1.4", "color_hex": "#2E7D32"} | values
        response = self.client.post("/habitats", json=body, headers=self.as_("admin"))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def species(self, **values: Any) -> dict[str, Any]:
        body = {"name": "European Badger", "scientific_name": "Meles meles"} | values
        response = self.client.post("/species", json=body, headers=self.as_("admin"))
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def module_client(
    tmp_path_factory: pytest.TempPathFactory,
    served_overrides: dict[str, Any],
    migrated_served: None,
) -> Iterator[TestClient]:
    """One app per test module (starting one costs a second); tests empty its tables."""
    from worldbase.app import create_app

    settings = base_settings(tmp_path_factory.mktemp("habitats") / "data", **served_overrides)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


HABITAT_TABLES = ("species_occurrences", "species", "habitats")


async def empty_habitat_tables(services: Any) -> None:
    """Only this app's tables (users accumulate, under unique names): far cheaper on
    PostgreSQL than truncating every table of every app before each test."""
    from sqlalchemy import text

    async with services.db.engine.begin() as conn:
        if services.db.is_sqlite:
            for name in HABITAT_TABLES:
                await conn.execute(text(f'DELETE FROM "{name}"'))
        else:
            await conn.execute(text(f"TRUNCATE {', '.join(HABITAT_TABLES)} RESTART IDENTITY"))
    await services.cache.clear()


@pytest.fixture
def client(module_client: TestClient) -> TestClient:
    """The module's app with empty habitat tables and caches (overrides the per-test app)."""
    module_client.portal.call(empty_habitat_tables, module_client.app.state.services)  # type: ignore[attr-defined,union-attr]
    return module_client


def _admin_token(client: TestClient) -> str:
    """An admin (made by the service: the API cannot make one) and its access token, without
    password hashing (tests stay fast)."""
    from worldbase.core import users
    from worldbase.core.auth import create_access_token

    async def make(session: Any) -> str:
        user = await users.create(
            session, email=f"admin-{uuid.uuid4().hex[:8]}@example.org", password=None, is_admin=True
        )
        await session.commit()
        return create_access_token(user=user, settings=client.app.state.settings)  # type: ignore[attr-defined]

    return str(run_db(client, make))


@pytest.fixture
def world(client: TestClient) -> World:
    """Callers: two game players (HS256 tokens with JWT_SECRET, auto-provisioned from `sub`),
    an admin, the game token of a third player, and anonymous (no token)."""
    secret = client.app.state.settings.secret  # type: ignore[attr-defined]
    tokens = {
        "user": game_token(secret, sub=f"player-{uuid.uuid4().hex[:8]}"),
        "other": game_token(secret, sub=f"player-{uuid.uuid4().hex[:8]}"),
        "game": game_token(secret),
        "admin": _admin_token(client),
    }
    return World(client, tokens)


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def point(lon: float, lat: float, **properties: Any) -> dict[str, Any]:
    return feature({"type": "Point", "coordinates": [lon, lat]}, **properties)


def square(lon: float, lat: float, size: float = 1.0, **properties: Any) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return feature({"type": "Polygon", "coordinates": [ring]}, **properties)


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


@pytest.fixture(scope="session")
def small_cog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1024 x 512 global classified COG (classes of the demo world)."""
    from worldbase.apps.habitats.seed import DEMO_CLASSES
    from worldbase.geo.synthetic import write_classified_cog

    path = tmp_path_factory.mktemp("cog") / "habitats.tif"
    return write_classified_cog(
        path, width=1024, height=512, classes=[c for c, *_ in DEMO_CLASSES], seed=3
    )


def put_demo_raster(client: TestClient, path: Path) -> None:
    """Put a COG where the app looks when HABITAT_RASTER_URL is unset (the seeded raster)."""
    from worldbase.apps.habitats.seed import DEMO_RASTER_KEY

    storage = client.app.state.services.storage  # type: ignore[attr-defined]
    client.portal.call(storage.put, DEMO_RASTER_KEY, path.read_bytes())  # type: ignore[union-attr]


@pytest.fixture
def raster_world(world: World, small_cog: Path) -> World:
    put_demo_raster(world.client, small_cog)
    return world
