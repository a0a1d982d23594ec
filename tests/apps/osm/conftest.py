"""Builders for the osm tests: an admin, a data source with its token, objects pushed via REST."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import auth_headers, register_user


class OSM:
    def __init__(self, client: TestClient):
        self.client = client
        _, token = register_user(client, admin=True)
        self.admin = auth_headers(token)

    def source(self, **values: Any) -> tuple[dict[str, Any], str]:
        body = {"name": "test source", "type": "rest", **values}
        response = self.client.post("/data-sources", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        data = response.json()
        return data, data["token"]

    def push(self, source_id: str, token: str, payload: Any, status: int = 200) -> dict[str, Any]:
        response = self.client.post(
            f"/data-sources/{source_id}/ingest", json=payload, headers=auth_headers(token)
        )
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body


def total_count(response: Any) -> int:
    """The total of a `GET /objects` answer (a plain array; the total is in a header)."""
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)
    return int(response.headers["X-Total-Count"])


def node(osm_id: int, lon: float, lat: float, version: int = 1, **tags: Any) -> dict[str, Any]:
    return {"type": "node", "id": osm_id, "lon": lon, "lat": lat, "version": version, "tags": tags}


@pytest.fixture
def osm(client: TestClient) -> OSM:
    return OSM(client)
