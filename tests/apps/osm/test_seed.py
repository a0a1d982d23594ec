"""The demo data: a source, cafés and a way, through the ingestion service; idempotent."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.apps.osm.conftest import OSM
from tests.builders import run_db
from worldbase.apps.osm.seed import DEMO_SOURCE, seed_demo


def test_seed_demo_is_idempotent(osm: OSM, client: TestClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    first = run_db(client, seed_demo, settings=settings)
    assert "created data source" in first and "objects created 6" in first
    second = run_db(client, seed_demo, settings=settings)
    assert "kept data source" in second and "unchanged 6" in second
    sources = client.get("/data-sources", headers=osm.admin).json()
    assert [s["name"] for s in sources["items"]] == [DEMO_SOURCE]
    cafes = client.get("/objects?tag=amenity=cafe&bbox=13.40,52.51,13.42,52.53")
    assert cafes.headers["X-Total-Count"] == "3" and len(cafes.json()) == 3
    way = client.get("/objects/osm/way/9000000101").json()
    assert way["geom"]["type"] == "LineString" and len(way["geom"]["coordinates"]) == 3
    assert client.get("/admin/stats", headers=osm.admin).json()["history_entries"] == 6
