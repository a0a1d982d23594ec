"""Builders for the samsyn tests: a team of callers around one map, maps, layers, features."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import auth_headers, register_user
from tests.mapserver import WmsServer, start_wms
from worldbase.settings import Settings

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[2.5, 54.5], [3.5, 54.5], [3.5, 55.5], [2.5, 55.5], [2.5, 54.5]]],
}
# A WMS layer's capabilities are read when it is saved: `url` is set to the session's WMS
# on loopback (tests.mapserver: MapServer, or its stand-in when `mapserv` is missing, which
# map and layer CRUD need no more than) before the first test runs.
WMS_CONFIG = {
    "url": "http://127.0.0.1:9/wms",
    "layers": "quads",
    "version": "1.3.0",
    "format": "image/png",
}


# GeoTIFF layers of the layer/style tests name these; the allow-list must admit them.
EXAMPLE_COG_HOSTS = ("https://example.org/", "https://storage.example.org/")


@pytest.fixture(scope="session")
def wms_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WmsServer]:
    for server in start_wms(tmp_path_factory.mktemp("mapserver")):
        WMS_CONFIG["url"] = server.url
        yield server


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], migrated_served: None, wms_server: WmsServer
) -> Settings:
    """The samsyn tests' app may read the loopback WMS (the source allow-list) and name the
    example COG hosts the layer tests use (never read)."""
    return make_settings(worldbase_source_allowlist=[f"{wms_server.base}/", *EXAMPLE_COG_HOSTS])


def feature(geometry: dict[str, Any] | None = None, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry or SQUARE, "properties": properties}


def point(lon: float, lat: float, **properties: Any) -> dict[str, Any]:
    return feature({"type": "Point", "coordinates": [lon, lat]}, **properties)


@dataclass
class Team:
    """The owner of a `collaborators` map, an editor and a viewer on it, a stranger, an admin;
    `as_(who)` gives the headers (anonymous: none)."""

    client: TestClient
    users: dict[str, dict[str, Any]]
    tokens: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return auth_headers(self.tokens[who]) if who in self.tokens else {}

    def create_map(self, who: str = "owner", **values: Any) -> dict[str, Any]:
        body = {"name": "North Sea plan", "center_lat": 54.5, "center_lng": 4.0, "zoom": 6} | values
        response = self.client.post("/api/maps", json=body, headers=self.as_(who))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def share(self, map_id: str, who: str, permission: str) -> None:
        response = self.client.post(
            f"/api/maps/{map_id}/collaborators",
            json={"user_id": self.users[who]["id"], "permission": permission},
            headers=self.as_("owner"),
        )
        assert response.status_code in (200, 201), response.text

    def shared_map(self, **values: Any) -> dict[str, Any]:
        map_ = self.create_map(**({"permission_level": "collaborators"} | values))
        self.share(map_["id"], "editor", "edit")
        self.share(map_["id"], "viewer", "view")
        return map_

    def create_layer(self, who: str = "owner", **values: Any) -> dict[str, Any]:
        body = {"name": "MPAs", "source_type": "vector", "category": "conservation"} | values
        response = self.client.post("/api/layers", json=body, headers=self.as_(who))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def add_layer(self, map_id: str, layer_id: str, **values: Any) -> dict[str, Any]:
        response = self.client.post(
            f"/api/maps/{map_id}/layers",
            json={"layer_id": layer_id} | values,
            headers=self.as_("owner"),
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def add_features(
        self, layer_id: str, *features: dict[str, Any], who: str = "owner"
    ) -> list[dict[str, Any]]:
        response = self.client.post(
            f"/api/layers/{layer_id}/features",
            json={"type": "FeatureCollection", "features": list(features)},
            headers=self.as_(who),
        )
        assert response.status_code == 201, response.text
        return list(response.json()["features"])


@pytest.fixture
def team(client: TestClient) -> Team:
    users: dict[str, dict[str, Any]] = {}
    tokens: dict[str, str] = {}
    for who in ("owner", "editor", "viewer", "stranger"):
        users[who], tokens[who] = register_user(client, f"{who}@example.org", name=who.title())
    users["admin"], tokens["admin"] = register_user(client, "admin@example.org", admin=True)
    return Team(client, users, tokens)


CALLERS = ("owner", "editor", "viewer", "stranger", "anonymous", "admin")
