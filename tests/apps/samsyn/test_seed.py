"""The demo data: one public map with the seed's three example layers, loaded once."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.builders import register_user, run_db
from worldbase.apps.samsyn.seed import seed_demo
from worldbase.seeding import DEMO_EMAIL


def test_seed_demo_is_idempotent(client: TestClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    assert run_db(client, seed_demo, settings=settings) == "skipped (no demo user)"
    register_user(client, DEMO_EMAIL)

    async def seed(session, settings):  # type: ignore[no-untyped-def]
        result = await seed_demo(session, settings)
        await session.commit()
        return result

    assert "created" in run_db(client, seed, settings=settings)
    assert run_db(client, seed, settings=settings) == "demo map already there"
    maps = client.get("/api/maps").json()["items"]
    assert len(maps) == 1
    detail = client.get(f"/api/maps/{maps[0]['id']}").json()
    assert [ml["layer"]["source_type"] for ml in detail["layers"]] == ["wms", "geotiff", "vector"]
    vector = detail["layers"][2]["layer"]
    assert vector["source_config"]["featureCount"] == 2
    assert client.get(f"/api/maps/{maps[0]['id']}/style.json").status_code == 200
    # The bathymetry layer reads the synthetic COG the seed put in storage: real tiles.
    raster = detail["layers"][1]["layer"]
    assert raster["source_config"]["url"].startswith("storage://")
    tile = client.get(f"/api/layers/{raster['id']}/tiles/6/32/20")
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
    assert client.get(f"/api/layers/{raster['id']}/tiles/6/0/0").status_code == 204
