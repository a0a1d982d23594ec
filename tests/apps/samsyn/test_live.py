"""Live events over the WebSocket, the MapLibre style, vector tiles and TileJSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from starlette.websockets import WebSocketDisconnect

from tests.apps.samsyn.conftest import WMS_CONFIG, Team, feature, point
from tests.builders import assert_error
from tests.conftest import IN_CI
from worldbase.geo.tiles import lonlat_to_tile

STYLE_SPEC = "@maplibre/maplibre-gl-style-spec@20"


def _validator() -> Path | None:
    """`gl-style-validate` from npm, installed once into a cache directory."""
    npm = shutil.which("npm")
    if npm is None:
        return None
    root = Path(tempfile.gettempdir()) / "worldbase-maplibre-style-spec"
    binary = root / "node_modules" / ".bin" / "gl-style-validate"
    if not binary.exists():
        root.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                npm,
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(root),
                STYLE_SPEC,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            return None
    return binary


def _check_style(style: dict[str, Any], tmp_path: Path) -> None:
    """The MapLibre validator's verdict (CI requires it), or the same rules checked here."""
    binary = _validator()
    if binary is None:
        if IN_CI:  # locally, the structural checks below still run
            pytest.fail("npm's @maplibre/maplibre-gl-style-spec is required under CI=true")
    else:
        path = tmp_path / "style.json"
        path.write_text(json.dumps(style))
        result = subprocess.run(
            [str(binary), str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    # Structural checks in any case: every layer's source exists, ids are unique.
    assert style["version"] == 8
    ids = [layer["id"] for layer in style["layers"]]
    assert len(ids) == len(set(ids))
    for layer in style["layers"]:
        assert layer["type"] == "background" or layer["source"] in style["sources"]


def test_style_json(team: Team, tmp_path: Path) -> None:
    map_ = team.shared_map(basemap="mapbox://styles/mapbox/satellite-v9")
    vector = team.create_layer(style_config={"stroke": "#ff0000", "fill": "#ff000033"})
    wms = team.create_layer(
        name="SST", source_type="wms", source_config=WMS_CONFIG | {"dimensions": {"elevation": 0}}
    )
    tiff = team.create_layer(
        name="Bathy",
        source_type="geotiff",
        source_config={
            "delivery": "tiles",
            "tileServer": "https://titiler.example.org",
            "cogUrl": "https://example.org/b.tif",
            "bounds": [[2.0, 51.0], [8.0, 56.0]],
            "tileParams": {"rescale": "-200,0"},
        },
    )
    hidden = team.create_layer(name="Hidden")
    team.add_layer(map_["id"], vector["id"], opacity=0.5)
    team.add_layer(map_["id"], wms["id"])
    team.add_layer(map_["id"], tiff["id"])
    team.add_layer(map_["id"], hidden["id"], is_visible=False)
    response = team.client.get(f"/api/maps/{map_['id']}/style.json", headers=team.as_("viewer"))
    assert response.status_code == 200, response.text
    style = response.json()
    _check_style(style, tmp_path)
    assert (
        style["center"] == [4.0, 54.5]
        and "World_Imagery" in style["sources"]["basemap"]["tiles"][0]
    )
    sources = [layer.get("source") for layer in style["layers"]]
    order = list(dict.fromkeys(s for s in sources if s and s != "basemap"))
    assert order == [f"layer-{vector['id']}", f"layer-{wms['id']}", f"layer-{tiff['id']}"]
    vector_source = style["sources"][f"layer-{vector['id']}"]
    assert vector_source["url"].endswith(f"/api/layers/{vector['id']}/tilejson.json")
    wms_tiles = style["sources"][f"layer-{wms['id']}"]["tiles"][0]
    assert (
        "BBOX={bbox-epsg-3857}" in wms_tiles
        and "CRS=EPSG%3A3857" in wms_tiles
        and "ELEVATION=0" in wms_tiles
    )
    assert "titiler.example.org/cog/tiles" in style["sources"][f"layer-{tiff['id']}"]["tiles"][0]
    fill = next(layer for layer in style["layers"] if layer["id"].endswith("-fill"))
    assert fill["paint"]["fill-opacity"] == 0.5
    assert_error(
        team.client.get(f"/api/maps/{map_['id']}/style.json", headers=team.as_("stranger")), 404
    )
    empty = team.create_map(basemap="none", permission_level="public")
    _check_style(team.client.get(f"/api/maps/{empty['id']}/style.json").json(), tmp_path)


def test_vector_tiles_tilejson_and_invalidation(team: Team) -> None:
    layer = team.create_layer(is_global=True)
    (feature,) = team.add_features(layer["id"], point(4.0, 54.0, name="buoy", depth=12))
    tj = team.client.get(f"/api/layers/{layer['id']}/tilejson.json")
    assert tj.status_code == 200, tj.text
    assert tj.json()["tiles"][0].endswith(f"/api/layers/{layer['id']}/tiles/{{z}}/{{x}}/{{y}}")
    assert tj.json()["vector_layers"][0]["id"] == "features"
    url = f"/api/layers/{layer['id']}/tiles/6/32/20"
    first = team.client.get(url)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert "max-age" in first.headers["cache-control"]
    decoded = mapbox_vector_tile.decode(first.content)
    props = decoded["features"]["features"][0]["properties"]
    assert props["name"] == "buoy" and props["depth"] == 12 and props["id"] == feature["id"]
    etag = first.headers["etag"]
    assert team.client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert team.client.get(url).content == first.content
    # A feature change bumps the layer's revision: new ETag, new content.
    team.client.put(
        f"/api/layers/{layer['id']}/features/{feature['id']}",
        json={"properties": {"name": "moved"}},
        headers=team.as_("owner"),
    )
    second = team.client.get(url, headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["etag"] != etag
    assert (
        mapbox_vector_tile.decode(second.content)["features"]["features"][0]["properties"]["name"]
        == "moved"
    )
    assert team.client.get(f"/api/layers/{layer['id']}/tiles/6/0/0").status_code == 204
    # Low zooms plan per tile, high zooms share one prepared statement: both find the buoy.
    for z in (3, 11, 12, 16):
        x, y = lonlat_to_tile(4.0, 54.0, z)
        tile = team.client.get(f"/api/layers/{layer['id']}/tiles/{z}/{x}/{y}")
        assert tile.status_code == 200, (z, tile.text)
        assert mapbox_vector_tile.decode(tile.content)["features"]["features"], z
    for z, x, y in ((23, 0, 0), (2, 4, 0), (2, 0, -1)):
        assert_error(team.client.get(f"/api/layers/{layer['id']}/tiles/{z}/{x}/{y}"), 422)


@pytest.mark.parametrize("with_point", [False, True])
def test_vector_tiles_of_polygons_hold_what_meets_the_tile(team: Team, with_point: bool) -> None:
    """Polygon layers filter exactly (PostGIS), point layers by boxes: same tiles either way."""
    layer = team.create_layer(is_global=True)
    triangle = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [0, 10], [0, 0]]]}
    features = [feature(triangle, name="triangle")]
    if with_point:
        features.append(point(9.5, 9.5, name="point"))
    team.add_features(layer["id"], *features)

    def names(z: int, lon: float, lat: float) -> set[str]:
        x, y = lonlat_to_tile(lon, lat, z)
        tile = team.client.get(f"/api/layers/{layer['id']}/tiles/{z}/{x}/{y}")
        if tile.status_code == 204:
            return set()
        assert tile.status_code == 200, tile.text
        decoded = mapbox_vector_tile.decode(tile.content)["features"]["features"]
        return {f["properties"]["name"] for f in decoded}

    for z in (6, 13):  # one statement per tile below z12, a shared one above
        assert names(z, 2.0, 2.0) == {"triangle"}
        # The triangle's box reaches this corner, the triangle does not.
        assert names(z, 9.5, 9.5) == ({"point"} if with_point else set())


def test_public_tiles_take_the_fast_lane_until_the_layer_changes(team: Team) -> None:
    layer = team.create_layer(is_global=True)
    (feature,) = team.add_features(layer["id"], point(4.0, 54.0, name="buoy"))
    url = f"/api/layers/{layer['id']}/tiles/6/32/20"
    first = team.client.get(url)
    assert first.status_code == 200 and "x-fast-lane" not in first.headers
    assert first.headers["cache-control"].startswith("public")
    for who in ("anonymous", "stranger", "admin"):  # the same tile, whoever asks
        again = team.client.get(url, headers=team.as_(who))
        assert again.headers.get("x-fast-lane") == "hit" and again.content == first.content
    hit_304 = team.client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert hit_304.status_code == 304 and hit_304.headers.get("x-fast-lane") == "hit"
    # A feature change: no worker answers the old tile.
    response = team.client.delete(
        f"/api/layers/{layer['id']}/features/{feature['id']}", headers=team.as_("owner")
    )
    assert response.status_code == 204
    emptied = team.client.get(url)
    assert emptied.status_code == 204 and "x-fast-lane" not in emptied.headers
    team.add_features(layer["id"], point(4.0, 54.0, name="new buoy"))
    assert team.client.get(url).status_code == 200
    assert team.client.get(url).headers.get("x-fast-lane") == "hit"
    # Leaving the library: the tile is private at once, and never in the lane again.
    response = team.client.put(
        f"/api/layers/{layer['id']}", json={"is_global": False}, headers=team.as_("owner")
    )
    assert response.status_code == 200, response.text
    for who in ("anonymous", "stranger"):
        assert_error(team.client.get(url, headers=team.as_(who)), 404)
    for _ in range(2):
        own = team.client.get(url, headers=team.as_("owner"))
        assert own.status_code == 200 and "x-fast-lane" not in own.headers
        assert own.headers["cache-control"].startswith("private")
    # Deleted: gone for everyone.
    team.client.put(
        f"/api/layers/{layer['id']}", json={"is_global": True}, headers=team.as_("owner")
    )
    team.client.get(url)
    assert team.client.get(url).headers.get("x-fast-lane") == "hit"
    deleted = team.client.delete(f"/api/layers/{layer['id']}", headers=team.as_("owner"))
    assert deleted.status_code == 204
    assert_error(team.client.get(url), 404)


def test_anonymous_tiles_of_a_library_layer_see_every_change_at_once(team: Team) -> None:
    layer = team.create_layer(is_global=True)
    (buoy,) = team.add_features(layer["id"], point(4.0, 54.0, name="buoy"))

    def tile_names(z: int) -> set[str]:  # each zoom asked once: the fast lane has none
        x, y = lonlat_to_tile(4.0, 54.0, z)
        tile = team.client.get(f"/api/layers/{layer['id']}/tiles/{z}/{x}/{y}")
        if tile.status_code == 204:
            return set()
        assert tile.status_code == 200, tile.text
        features = mapbox_vector_tile.decode(tile.content)["features"]["features"]
        return {f["properties"]["name"] for f in features}

    assert tile_names(14) == {"buoy"}
    assert tile_names(13) == {"buoy"} and tile_names(9) == {"buoy"}
    response = team.client.put(
        f"/api/layers/{layer['id']}/features/{buoy['id']}",
        json={"properties": {"name": "moved"}},
        headers=team.as_("owner"),
    )
    assert response.status_code == 200, response.text
    assert tile_names(12) == {"moved"}
    # Out of the library: anonymous callers are refused at once.
    response = team.client.put(
        f"/api/layers/{layer['id']}", json={"is_global": False}, headers=team.as_("owner")
    )
    assert response.status_code == 200, response.text
    x, y = lonlat_to_tile(4.0, 54.0, 14)
    assert_error(team.client.get(f"/api/layers/{layer['id']}/tiles/14/{x}/{y}"), 404)


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("owner", 200),
        ("editor", 200),
        ("viewer", 200),
        ("admin", 200),
        ("stranger", 404),
        ("anonymous", 404),
        ("bad token", 401),
        ("basic auth", 401),
    ],
)
def test_vector_tiles_of_a_shared_layer_for_every_caller(team: Team, who: str, code: int) -> None:
    map_ = team.shared_map()
    layer = team.create_layer()
    team.add_layer(map_["id"], layer["id"])
    team.add_features(layer["id"], point(4.0, 54.0, name="buoy"))
    headers = {
        "bad token": {"Authorization": "Bearer not-a-token"},
        "basic auth": {"Authorization": "Basic Zm9vOmJhcg=="},
    }.get(who) or team.as_(who)
    url = f"/api/layers/{layer['id']}/tiles/6/32/20"
    for query in ("", "?tilesize=256"):  # a raster parameter changes nothing here
        response = team.client.get(url + query, headers=headers)
        if code != 200:
            assert_error(response, code)
            continue
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"].startswith("private")
        assert "x-fast-lane" not in response.headers
        assert mapbox_vector_tile.decode(response.content)["features"]["features"]
    if code == 200:
        assert_error(
            team.client.get(f"/api/layers/{layer['id']}/tiles/6/64/0", headers=headers), 422
        )
    if code != 401:  # a bad credential is refused before the path is looked at
        assert_error(team.client.get("/api/layers/not-a-uuid/tiles/6/32/20", headers=headers), 422)
        assert_error(
            team.client.get(f"/api/layers/{layer['id']}/tiles/6/x/20", headers=headers), 422
        )


def test_tiles_of_other_layers_and_permissions(team: Team) -> None:
    wms = team.create_layer(source_type="wms", source_config=WMS_CONFIG, is_global=True)
    wms_tile = team.client.get(f"/api/layers/{wms['id']}/tiles/0/0/0")  # the loopback WMS
    assert wms_tile.status_code == 200 and wms_tile.headers["content-type"] == "image/png"
    assert_error(team.client.get(f"/api/layers/{wms['id']}/tilejson.json"), 409)
    private = team.create_layer()
    assert_error(team.client.get(f"/api/layers/{private['id']}/tiles/0/0/0"), 404)
    assert_error(
        team.client.get(f"/api/layers/{private['id']}/tiles/0/0/0", headers=team.as_("stranger")),
        404,
    )
    assert (
        team.client.get(
            f"/api/layers/{private['id']}/tiles/0/0/0", headers=team.as_("admin")
        ).status_code
        == 204
    )


def _receive(ws: Any) -> dict[str, Any]:
    while True:
        event = ws.receive_json()
        if event.get("type") != "ping":
            return dict(event)


def test_live_events(team: Team) -> None:
    map_ = team.shared_map()
    layer = team.create_layer(editable="everyone")
    with team.client.websocket_connect(
        f"/api/maps/{map_['id']}/events?token={team.tokens['viewer']}"
    ) as ws:
        assert _receive(ws)["type"] == "subscribed"
        team.add_layer(map_["id"], layer["id"])
        event = _receive(ws)
        assert event["type"] == "layer.added" and event["actor_id"] == team.users["owner"]["id"]
        team.add_features(layer["id"], point(1, 1), who="editor")
        event = _receive(ws)
        assert event["type"] == "feature.created" and event["data"]["count"] == 1
        team.client.post(
            "/api/comments",
            json={"content": "hi", "map_id": map_["id"]},
            headers=team.as_("viewer"),
        )
        assert _receive(ws)["type"] == "comment.created"
        team.client.post(
            f"/api/maps/{map_['id']}/collaborators",
            json={"email": "z@example.org"},
            headers=team.as_("owner"),
        )
        assert _receive(ws)["type"] == "collaborator.added"
        team.client.put(f"/api/maps/{map_['id']}", json={"zoom": 3}, headers=team.as_("owner"))
        assert _receive(ws)["type"] == "map.updated"


@pytest.mark.parametrize(("who", "code"), [("stranger", 4404), ("anonymous", 4404), ("bad", 4401)])
def test_live_events_refuse_non_readers(team: Team, who: str, code: int) -> None:
    map_ = team.shared_map()
    token = {
        "stranger": f"?token={team.tokens['stranger']}",
        "anonymous": "",
        "bad": "?token=nope",
    }[who]
    with (
        team.client.websocket_connect(f"/api/maps/{map_['id']}/events{token}") as ws,
        pytest.raises(WebSocketDisconnect) as info,
    ):
        ws.receive_json()
    assert info.value.code == code
