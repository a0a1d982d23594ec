"""The game's TiTiler URLs keep working for the habitat raster through `/cog/...`, and a
local HABITAT_RASTER_URL (under the data directory) feeds the habitat tiles."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.apps.habitats.conftest import game_token
from tests.builders import auth_headers, run_db
from worldbase.apps.habitats.seed import DEMO_CLASSES
from worldbase.settings import Settings


def test_titiler_urls_and_a_local_habitat_raster(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    small_cog: Path,
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    raster = data_dir / "rasters" / "habitats.tif"
    raster.parent.mkdir()
    shutil.copy(small_cog, raster)
    client = app_factory(make_settings(habitat_raster_url=str(raster)))
    colormap = json.dumps({str(v): color for v, color in DEMO_CLASSES})

    tilejson = client.get(
        "/cog/WebMercatorQuad/tilejson.json", params={"url": str(raster), "colormap": colormap}
    )
    assert tilejson.status_code == 200, tilejson.text
    body = tilejson.json()
    assert body["tiles"] and "colormap=" in body["tiles"][0]
    tile = client.get(
        "/cog/tiles/WebMercatorQuad/2/2/1.png", params={"url": str(raster), "colormap": colormap}
    )
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"

    from worldbase.apps.habitats import service

    habitat = run_db(client, service.create, values={"name": "Forest", "iucn_code": "1.4"})
    token = game_token(client.app.state.settings.secret)  # type: ignore[attr-defined]
    ours = client.get(f"/habitats/{habitat.id}/tiles/2/2/1", headers=auth_headers(token))
    assert ours.status_code == 200 and ours.headers["content-type"] == "image/png"
    info = client.get("/api/location_info/", params={"lon": 10, "lat": 50})
    assert info.status_code == 200
