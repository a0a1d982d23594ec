"""Builders for the habitats tests: callers (user, another user, anonymous, admin, a game
token), habitats and species through the API, and a small classified COG."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.builders import auth_headers, register_user

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[10.0, 50.0], [11.0, 50.0], [11.0, 51.0], [10.0, 51.0], [10.0, 50.0]]],
}
CALLERS = ("user", "other", "anonymous", "admin")


def game_token(secret: str, sub: str = "game-player-1", **claims: Any) -> str:
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


@pytest.fixture
def world(client: TestClient) -> World:
    tokens: dict[str, str] = {}
    _, tokens["user"] = register_user(client)
    _, tokens["other"] = register_user(client)
    _, tokens["admin"] = register_user(client, admin=True)
    tokens["game"] = game_token(client.app.state.settings.secret)  # type: ignore[attr-defined]
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
    from worldbase.geo.classified import write_classified_cog

    path = tmp_path_factory.mktemp("cog") / "habitats.tif"
    return write_classified_cog(
        path, width=1024, height=512, classes=[c for c, *_ in DEMO_CLASSES], seed=3
    )
