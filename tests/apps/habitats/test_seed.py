"""The demo world: a synthetic classified COG in storage (the default habitat raster), a
dozen habitats with IUCN codes and colours, species with ranges; idempotent."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.apps.habitats.conftest import World
from tests.builders import run_db
from worldbase.apps.habitats.seed import DEMO_HABITATS, DEMO_RASTER_KEY, DEMO_SPECIES, seed_demo


def test_seed_makes_a_demo_world_that_tiles_and_look_ups_use(
    world: World, client: TestClient
) -> None:
    services: Any = client.app.state.services  # type: ignore[attr-defined]
    client.portal.call(_drop_raster, services.storage)  # type: ignore[union-attr]
    first = run_db(client, seed_demo, settings=services.settings)
    assert f"created {len(DEMO_HABITATS)} habitats and {len(DEMO_SPECIES)} species" in first
    assert client.portal.call(services.storage.exists, DEMO_RASTER_KEY)  # type: ignore[union-attr]
    second = run_db(client, seed_demo, settings=services.settings)
    assert "kept the demo habitat raster" in second and "already there" in second

    habitats = client.get("/habitats").json()
    assert habitats["total"] == len(DEMO_HABITATS)
    assert all(h["raster_value"] and h["color_hex"].startswith("#") for h in habitats["items"])
    info = client.get("/api/location_info/", params={"lon": 10.0, "lat": 50.0}).json()
    assert "Meles meles" in info["species"] and "Vulpes vulpes" in info["species"]
    codes = {h["raster_value"] for h in habitats["items"]}
    assert info["habitats"] and set(info["habitats"]) <= codes
    tile = client.get("/habitats/tiles/2/2/1", headers=world.as_("user"))
    assert tile.status_code == 200 and len(tile.content) > 500


async def _drop_raster(storage: Any) -> None:
    if await storage.exists(DEMO_RASTER_KEY):
        await storage.delete(DEMO_RASTER_KEY)
