"""GeoTIFF layer services: tiles, info, statistics, preview, point, TileJSON, time steps —
as every caller, with the tile cache and its invalidation, and the bad inputs."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.apps.samsyn.conftest import CALLERS, EXAMPLE_COG_HOSTS, WMS_CONFIG, Team
from tests.builders import assert_error, run_db
from tests.conftest import BACKEND
from tests.mapserver import WmsServer
from tests.rasters import make_cog, range_server
from worldbase.apps.samsyn.events import layer_tiles_tag
from worldbase.apps.samsyn.layers.temporal import InvalidTime, Timeline
from worldbase.apps.samsyn.models import Layer
from worldbase.core import fast_lane
from worldbase.geo import raster_readers
from worldbase.geo.tile_cache import flush_pending
from worldbase.settings import Settings

Z, X, Y = 7, 65, 41  # inside the test rasters (lon 2..8, lat 51..56)
TILE = f"tiles/{Z}/{X}/{Y}"
MONTHS = {"202001": 10, "202002": 20, "202003": 30}


def png(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


@pytest.fixture(scope="module")
def cogs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("samsyn-cogs")
    make_cog(root / "rgb.tif")
    for month, value in MONTHS.items():
        make_cog(root / "sst" / f"sst_{month}.tif", data=np.full((1, 64, 64), value, "uint8"))
    return root


@pytest.fixture(scope="module")
def http(cogs: Path) -> Iterator[str]:
    with range_server(cogs) as base:
        yield base


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    migrated_served: None,
    wms_server: WmsServer,
    http: str,
) -> Settings:
    allowed = [f"{wms_server.base}/", f"{http}/", *EXAMPLE_COG_HOSTS]
    return make_settings(worldbase_source_allowlist=allowed)


@pytest.fixture(autouse=True)
def _fresh_readers() -> Iterator[None]:
    yield
    raster_readers.READERS.clear()


def geotiff(team: Team, url: str, who: str = "owner", **config: Any) -> dict[str, Any]:
    source_config = {"delivery": "tiles", "cogUrl": url} | config
    return team.create_layer(who, source_type="geotiff", source_config=source_config)


def temporal(http: str, **changes: Any) -> dict[str, Any]:
    return {
        "delivery": "tiles",
        "cogUrlTemplate": f"{http}/sst/sst_{{YYYYMM}}.tif",
        "temporal": {
            "enabled": True,
            "start": "2020-01-01",
            "end": "2020-03-31",
            "resolution": "monthly",
        },
        "tileParams": {"rescale": "0,100"},
    } | changes


def shared_layer(team: Team, http: str) -> dict[str, Any]:
    """A private layer of the owner on a collaborators map (editor and viewer share it)."""
    layer = geotiff(team, f"{http}/rgb.tif")
    map_ = team.shared_map()
    team.add_layer(map_["id"], layer["id"])
    return layer


ENDPOINTS = (
    TILE,
    f"{TILE}.webp",
    f"{TILE}@2x.png",
    f"{TILE}@2x",
    "info",
    "statistics",
    "preview?max_size=64",
    "point/5.0,53.5",
    "tilejson.json",
    "times",
)


def test_every_endpoint_as_every_caller(team: Team, http: str) -> None:
    layer = shared_layer(team, http)
    readers = {"owner", "editor", "viewer", "admin"}
    for who in CALLERS:
        for endpoint in ENDPOINTS:
            response = team.client.get(
                f"/api/layers/{layer['id']}/{endpoint}", headers=team.as_(who)
            )
            if who in readers:
                assert response.status_code == 200, (who, endpoint, response.text)
            else:
                assert_error(response, 404)
    # A global layer is everyone's.
    public = geotiff(team, f"{http}/rgb.tif", "stranger")
    team.client.put(
        f"/api/layers/{public['id']}", json={"is_global": True}, headers=team.as_("stranger")
    )
    response = team.client.get(f"/api/layers/{public['id']}/{TILE}")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"].startswith("public, max-age")


def test_tiles_formats_cache_and_etags(team: Team, http: str) -> None:
    layer = geotiff(team, f"{http}/rgb.tif")
    base = f"/api/layers/{layer['id']}"
    owner = team.as_("owner")
    first = team.client.get(f"{base}/{TILE}", headers=owner)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert first.headers["x-tile-cache"] == "miss"
    assert first.headers["cache-control"].startswith("private, max-age")  # not a library layer
    pixels = png(first.content)
    assert pixels.shape == (256, 256, 4) and (pixels[..., 2] == 100).all()
    second = team.client.get(f"{base}/{TILE}", headers=owner)
    assert second.headers["x-tile-cache"] == "memory" and second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    same = team.client.get(
        f"{base}/{TILE}", headers=owner | {"If-None-Match": first.headers["etag"]}
    )
    assert same.status_code == 304 and not same.content
    assert same.headers["etag"] == first.headers["etag"]
    assert team.client.get(f"{base}/{TILE}.png", headers=owner).content == first.content
    for fmt, kind in (
        ("webp", "image/webp"),
        ("jpeg", "image/jpeg"),
        ("npy", "application/x-binary"),
    ):
        response = team.client.get(f"{base}/{TILE}.{fmt}", headers=owner)
        assert response.status_code == 200 and response.headers["content-type"] == kind
    assert png(team.client.get(f"{base}/{TILE}@2x", headers=owner).content).shape == (512, 512, 4)
    assert png(team.client.get(f"{base}/{TILE}@2x.png", headers=owner).content).shape[0] == 512
    empty = team.client.get(f"{base}/tiles/7/0/0", headers=owner)
    assert empty.status_code == 204 and empty.headers["etag"]
    gray = team.client.get(f"{base}/{TILE}?bidx=3&rescale=0,200", headers=owner)
    assert gray.headers["etag"] != first.headers["etag"]
    assert png(gray.content).shape == (256, 256, 2)


def test_tile_params_are_defaults_and_config_changes_invalidate(team: Team, http: str) -> None:
    layer = geotiff(
        team, f"{http}/rgb.tif", tileParams={"bidx": "3", "colormap": {"100": "#ff0000"}}
    )
    base = f"/api/layers/{layer['id']}"
    owner = team.as_("owner")
    red = team.client.get(f"{base}/{TILE}", headers=owner)
    assert tuple(png(red.content)[3, 3]) == (255, 0, 0, 255)
    overridden = team.client.get(f"{base}/{TILE}?colormap_name=viridis", headers=owner)
    assert tuple(png(overridden.content)[3, 3]) != (255, 0, 0, 255)
    config = layer["source_config"] | {"tileParams": {"bidx": "3", "colormap": {"100": "#00ff00"}}}
    updated = team.client.put(base, json={"source_config": config}, headers=owner)
    assert updated.status_code == 200, updated.text
    green = team.client.get(
        f"{base}/{TILE}", headers=owner | {"If-None-Match": red.headers["etag"]}
    )
    assert green.status_code == 200 and green.headers["x-tile-cache"] == "miss"
    assert tuple(png(green.content)[3, 3]) == (0, 255, 0, 255)
    # A second hit writes the tile to storage; a config change or a delete frees it again.
    assert team.client.get(f"{base}/{TILE}", headers=owner).headers["x-tile-cache"] == "memory"
    storage = team.client.app.state.services.storage  # type: ignore[attr-defined]
    prefix = f"tiles/samsyn/{layer['id']}/"

    async def stored() -> list[str]:
        await flush_pending()
        return [obj.key async for obj in storage.list(prefix)]

    assert len(team.client.portal.call(stored)) == 1  # type: ignore[union-attr]
    assert team.client.delete(base, headers=owner).status_code == 204
    assert team.client.portal.call(stored) == []  # type: ignore[union-attr]


def test_library_layer_tiles_take_the_fast_lane_until_the_config_changes(
    team: Team, http: str
) -> None:
    source_config = {
        "delivery": "tiles",
        "cogUrl": f"{http}/rgb.tif",
        "tileParams": {"bidx": "3", "colormap": {"100": "#ff0000"}},
    }
    layer = team.create_layer(source_type="geotiff", source_config=source_config, is_global=True)
    base = f"/api/layers/{layer['id']}"
    red = team.client.get(f"{base}/{TILE}")
    assert red.headers["cache-control"].startswith("public") and "x-fast-lane" not in red.headers
    again = team.client.get(f"{base}/{TILE}", headers=team.as_("stranger"))
    assert again.headers.get("x-fast-lane") == "hit" and again.content == red.content
    config = source_config | {"tileParams": {"bidx": "3", "colormap": {"100": "#00ff00"}}}
    updated = team.client.put(base, json={"source_config": config}, headers=team.as_("owner"))
    assert updated.status_code == 200, updated.text
    green = team.client.get(f"{base}/{TILE}")
    assert "x-fast-lane" not in green.headers
    assert tuple(png(green.content)[3, 3]) == (0, 255, 0, 255)
    assert team.client.get(f"{base}/{TILE}").headers.get("x-fast-lane") == "hit"

    # Another worker changes the layer: its invalidation arrives through the hub, and this
    # worker forgets the tiles and the layer row it keeps, so it renders the new config.
    async def recolour(session: AsyncSession) -> None:
        blue = source_config | {"tileParams": {"bidx": "3", "colormap": {"100": "#0000ff"}}}
        await session.execute(
            update(Layer).where(Layer.id == uuid.UUID(layer["id"])).values(source_config=blue)
        )
        await session.commit()

    run_db(team.client, recolour)
    fast_lane.invalidate_local(layer_tiles_tag(uuid.UUID(layer["id"])))
    blue = team.client.get(f"{base}/{TILE}")
    assert "x-fast-lane" not in blue.headers
    assert tuple(png(blue.content)[3, 3]) == (0, 0, 255, 255)


def test_info_statistics_point_preview_tilejson(team: Team, http: str) -> None:
    layer = geotiff(team, f"{http}/rgb.tif")
    base = f"/api/layers/{layer['id']}"
    owner = team.as_("owner")
    info = team.client.get(f"{base}/info", headers=owner).json()
    assert info["count"] == 3 and info["delivery"] == "tiles" and info["url"].endswith("rgb.tif")
    assert info["geographic_bounds"] == pytest.approx([2.0, 51.0, 8.0, 56.0])
    stats = team.client.get(
        f"{base}/statistics?bidx=3&p=5&p=95&histogram_bins=4&histogram_range=0,200", headers=owner
    ).json()
    assert set(stats) == {"b3"} and stats["b3"]["min"] == 100
    assert "percentile_5" in stats["b3"] and len(stats["b3"]["histogram"][0]) == 4
    categories = team.client.get(f"{base}/statistics?bidx=3&categorical=true", headers=owner)
    assert categories.json()["b3"]["histogram"][1] == [100]
    value = team.client.get(f"{base}/point/5.0,53.5", headers=owner).json()
    assert value["values"][2] == 100 and value["coordinates"] == [5.0, 53.5]
    assert_error(team.client.get(f"{base}/point/-40.5,10", headers=owner), 404)
    preview = team.client.get(f"{base}/preview?max_size=32&format=webp", headers=owner)
    assert preview.headers["content-type"] == "image/webp"
    tj = team.client.get(f"{base}/tilejson.json?bidx=1", headers=owner).json()
    assert tj["tiles"][0].endswith(f"/api/layers/{layer['id']}/tiles/{{z}}/{{x}}/{{y}}?bidx=1")
    assert tj["bounds"] == pytest.approx([2.0, 51.0, 8.0, 56.0]) and tj["delivery"] == "tiles"
    direct = team.create_layer(
        source_type="geotiff", source_config={"delivery": "direct", "url": f"{http}/rgb.tif"}
    )
    dj = team.client.get(f"/api/layers/{direct['id']}/tilejson.json", headers=owner).json()
    assert dj["delivery"] == "direct" and dj["url"] == f"{http}/rgb.tif"


def test_temporal_layers(team: Team, http: str) -> None:
    layer = team.create_layer(source_type="geotiff", source_config=temporal(http))
    base = f"/api/layers/{layer['id']}"
    owner = team.as_("owner")
    for time, value in (("2020-02-01", 20), ("2020-03", 30), ("2020-01-01T00:00:00Z", 10)):
        point = team.client.get(f"{base}/point/5,53.5?time={time}", headers=owner).json()
        assert point["values"] == [value], time
    latest = team.client.get(f"{base}/point/5,53.5", headers=owner).json()
    assert latest["values"] == [30] and latest["time"] == "2020-03-01T00:00:00Z"
    tile = team.client.get(f"{base}/{TILE}?time=2020-02-01", headers=owner)
    assert abs(int(png(tile.content)[5, 5, 0]) - 51) <= 1  # 20 of 0..100
    other = team.client.get(f"{base}/{TILE}?time=2020-01-01", headers=owner)
    assert other.headers["etag"] != tile.headers["etag"]
    stats = team.client.get(f"{base}/statistics?time=2020-01-01", headers=owner).json()
    assert stats["b1"]["min"] == stats["b1"]["max"] == 10
    times = team.client.get(f"{base}/times", headers=owner).json()
    assert times["items"] == [
        "2020-01-01T00:00:00Z",
        "2020-02-01T00:00:00Z",
        "2020-03-01T00:00:00Z",
    ]
    assert times["total"] == 3 and times["resolution"] == "monthly"
    page = team.client.get(f"{base}/times?limit=1&offset=1", headers=owner).json()
    assert page["items"] == ["2020-02-01T00:00:00Z"] and page["total"] == 3
    # A time selects the step that contains it (the seed: `statistics?time=2023-06-15` on a
    # monthly layer is June), up to the end of the last step.
    for time, value in (("2020-02-15", 20), ("2020-01-31T23:59:59Z", 10), ("2020-03-31T23:00", 30)):
        stats = team.client.get(f"{base}/statistics?time={time}", headers=owner).json()
        assert stats["b1"]["min"] == stats["b1"]["max"] == value, time
        point = team.client.get(f"{base}/point/5,53.5?time={time}", headers=owner).json()
        assert point["time"] == f"2020-{value // 10:02d}-01T00:00:00Z"
    mid = team.client.get(f"{base}/{TILE}?time=2020-02-20T12:00:00Z", headers=owner)
    assert mid.headers["etag"] == tile.headers["etag"]  # the same step, the same tile
    for bad in ("2019-12-31T23:00:00Z", "2020-04-01", "yesterday", "2020-13"):
        assert_error(team.client.get(f"{base}/{TILE}?time={bad}", headers=owner), 400)
        assert_error(team.client.get(f"{base}/statistics?time={bad}", headers=owner), 400)
    assert_error(team.client.get(f"{base}/times?limit=5000", headers=owner), 422)
    daily = team.create_layer(
        source_type="geotiff",
        source_config=temporal(
            http,
            temporal={
                "enabled": True,
                "start": "2000-01-01",
                "end": "2024-12-31",
                "resolution": "daily",
            },
        ),
    )
    many = team.client.get(f"/api/layers/{daily['id']}/times?limit=2&offset=9000", headers=owner)
    assert many.json()["items"] == ["2024-08-22T00:00:00Z", "2024-08-23T00:00:00Z"]
    assert many.json()["total"] == 9132
    static = geotiff(team, f"{http}/rgb.tif")
    assert_error(
        team.client.get(f"/api/layers/{static['id']}/{TILE}?time=2020-01-01", headers=owner), 400
    )
    assert team.client.get(f"/api/layers/{static['id']}/times", headers=owner).json()["total"] == 0


def test_a_missing_time_step_names_the_time(team: Team, http: str, cogs: Path) -> None:
    """The layer says monthly to May, the files stop in March: April is a 404 that names the
    time, never where the file would have been."""
    config = temporal(
        http,
        temporal={
            "enabled": True,
            "start": "2020-01-01",
            "end": "2020-05-01",
            "resolution": "monthly",
        },
    )
    layer = team.create_layer(source_type="geotiff", source_config=config)
    base = f"/api/layers/{layer['id']}"
    owner = team.as_("owner")
    for endpoint in ("statistics", "info", "point/5,53.5", "preview", TILE, "tilejson.json"):
        answer = team.client.get(f"{base}/{endpoint}?time=2020-04-15", headers=owner)
        body = assert_error(answer, 404)
        assert "2020-04-01T00:00:00Z" in body["message"], (endpoint, body)
        for secret in (str(cogs), "sst_202004", http):
            assert secret not in answer.text, (endpoint, secret)
    assert team.client.get(f"{base}/statistics?time=2020-03-02", headers=owner).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "bidx=4",
        "bidx=0",
        "expression=b1%2B",
        "expression=b7*2",
        "rescale=1",
        "rescale=5,1",
        "colormap=%7B",
        "colormap_name=nope",
        "resampling=magic",
        "tilesize=5000",
    ],
)
def test_bad_render_parameters(team: Team, http: str, query: str) -> None:
    layer = geotiff(team, f"{http}/rgb.tif")
    for endpoint in (
        TILE,
        f"{TILE}.webp",
        "statistics",
        "point/5,53.5",
        "preview",
        "tilejson.json",
    ):
        if query.startswith(("tilesize", "resampling")) and endpoint.startswith("point"):
            continue
        response = team.client.get(
            f"/api/layers/{layer['id']}/{endpoint}?{query}", headers=team.as_("owner")
        )
        assert_error(response, 422)


def test_bad_tiles_and_layers(team: Team, http: str, settings: Settings) -> None:
    layer = geotiff(team, f"{http}/rgb.tif")
    base = f"/api/layers/{layer['id']}"
    owner = team.as_("owner")
    for tile in ("tiles/25/0/0", "tiles/2/4/0", "tiles/2/0/4", "tiles/1/0/0.gif", "tiles/1/0/0@9x"):
        assert_error(team.client.get(f"{base}/{tile}", headers=owner), 422)
    for query in ("histogram_bins=a", "histogram_range=1", "max_size=5", "p=200"):
        assert_error(team.client.get(f"{base}/statistics?{query}", headers=owner), 422)
    assert_error(team.client.get(f"{base}/preview?format=gif", headers=owner), 422)
    assert_error(team.client.get(f"{base}/point/200,0", headers=owner), 422)
    assert_error(team.client.get(f"{base}/point/a,b", headers=owner), 422)
    vector = team.create_layer()
    for endpoint in ("info", "statistics", "preview", "point/5,53", "times", f"{TILE}.png"):
        assert_error(team.client.get(f"/api/layers/{vector['id']}/{endpoint}", headers=owner), 400)
    wms = team.create_layer(source_type="wms", source_config=WMS_CONFIG)
    assert_error(team.client.get(f"/api/layers/{wms['id']}/info", headers=owner), 400)
    missing = geotiff(team, f"{http}/none.tif")
    assert_error(team.client.get(f"/api/layers/{missing['id']}/{TILE}", headers=owner), 502)
    assert_error(team.client.get(f"/api/layers/{missing['id']}/info", headers=owner), 502)


def test_sources_outside_the_allow_list(team: Team, http: str) -> None:
    owner = team.as_("owner")
    for url in (
        "http://169.254.169.254/latest/a.tif",
        "http://10.0.0.1/a.tif",
        "http://127.0.0.1:1/a.tif",
        "storage://../x.tif",
        "storage://samsyn/cogs/someone-else.tif",
        "/etc/passwd",
    ):
        response = team.client.post(
            "/api/layers",
            json={
                "name": "x",
                "source_type": "geotiff",
                "source_config": {"delivery": "tiles", "cogUrl": url},
            },
            headers=owner,
        )
        assert response.status_code in (403, 422), response.text
        assert_error(response, response.status_code)
    bad_params = team.client.post(
        "/api/layers",
        json={
            "name": "x",
            "source_type": "geotiff",
            "source_config": {
                "delivery": "tiles",
                "cogUrl": f"{http}/rgb.tif",
                "tileParams": {"rescale": "9"},
            },
        },
        headers=owner,
    )
    assert_error(bad_params, 422)


def _uploaded_layer(team: Team, key: str) -> dict[str, Any]:
    """A layer over a stored COG, made as the upload service makes it (not from a request)."""
    from worldbase.apps.samsyn.layers import service as service_layers
    from worldbase.core import users

    async def create(session: AsyncSession) -> Layer:
        owner = await users.get(session, user_id=uuid.UUID(team.users["owner"]["id"]))
        assert owner is not None
        config = {"delivery": "tiles", "cogUrl": f"storage://{key}"}
        values = {"name": "upload", "source_type": "geotiff", "source_config": config}
        return await service_layers.create(session, user=owner, values=values)

    layer = run_db(team.client, create)
    return {"id": str(layer.id)}


def test_storage_is_named_only_by_the_upload_service(team: Team, cogs: Path) -> None:
    """Issue 18 item 4: Bob cannot point a layer at Alice's stored objects."""
    storage = team.client.app.state.services.storage  # type: ignore[attr-defined]
    data = (cogs / "rgb.tif").read_bytes()
    for key in ("samsyn/cogs/alice.tif", "bestiary/uploads/alice/img_0000.jpg"):
        team.client.portal.call(storage.put, key, data)  # type: ignore[union-attr]
    alice = _uploaded_layer(team, "samsyn/cogs/alice.tif")
    for key in ("samsyn/cogs/alice.tif", "bestiary/uploads/alice/img_0000.jpg"):
        body = {
            "name": "mine now",
            "source_type": "geotiff",
            "source_config": {"delivery": "tiles", "cogUrl": f"storage://{key}"},
        }
        assert_error(team.client.post("/api/layers", json=body, headers=team.as_("stranger")), 403)
    bob = geotiff(team, "https://example.org/rgb.tif", who="stranger")
    change = {"source_config": {"delivery": "tiles", "cogUrl": "storage://samsyn/cogs/alice.tif"}}
    response = team.client.put(
        f"/api/layers/{bob['id']}", json=change, headers=team.as_("stranger")
    )
    assert_error(response, 403)
    # The owner may send the layer's own COG back unchanged (a client saving its form).
    response = team.client.put(
        f"/api/layers/{alice['id']}",
        json={
            "source_config": {
                "delivery": "tiles",
                "cogUrl": "storage://samsyn/cogs/alice.tif",
                "tileParams": {"rescale": "0,200"},
            }
        },
        headers=team.as_("owner"),
    )
    assert response.status_code == 200, response.text
    assert_error(
        team.client.get(f"/api/layers/{alice['id']}/info", headers=team.as_("stranger")), 404
    )


def test_storage_layers(team: Team, cogs: Path) -> None:
    storage = team.client.app.state.services.storage  # type: ignore[attr-defined]
    team.client.portal.call(storage.put, "samsyn/cogs/rgb.tif", (cogs / "rgb.tif").read_bytes())  # type: ignore[union-attr]
    layer = _uploaded_layer(team, "samsyn/cogs/rgb.tif")
    response = team.client.get(f"/api/layers/{layer['id']}/{TILE}", headers=team.as_("owner"))
    assert response.status_code == 200 and png(response.content).shape == (256, 256, 4)
    info = team.client.get(f"/api/layers/{layer['id']}/info", headers=team.as_("owner")).json()
    assert info["count"] == 3
    if BACKEND == "served":  # presigned S3 URL for direct clients; s3:// of the same bucket
        assert info["url"].startswith("http")
    else:
        assert info["url"] is None


def test_a_raster_without_a_crs_is_422_not_500(team: Team, cogs: Path, http: str) -> None:
    make_cog(cogs / "nocrs.tif", crs=None)  # type: ignore[arg-type]
    layer = geotiff(team, f"{http}/nocrs.tif")
    base = f"/api/layers/{layer['id']}"
    owner = team.as_("owner")
    for path in ("info", TILE, f"{TILE}.png", "point/5.0,53.5", "preview", "tilejson.json"):
        body = assert_error(team.client.get(f"{base}/{path}", headers=owner), 422)
        assert "CRS" in body["message"], (path, body)


@pytest.mark.parametrize(
    ("resolution", "start", "end", "time", "step"),
    [
        ("monthly", "2023-01-01", "2023-12-01", "2023-06-15", "2023-06-01T00:00:00"),
        ("monthly", "2023-01-15", "2023-12-15", "2023-06-14T23:00:00Z", "2023-05-15T00:00:00"),
        ("monthly", "2023-01-01", "2023-12-01", "2023-12-31T23:59:59", "2023-12-01T00:00:00"),
        ("yearly", "2000-01-01", "2010-01-01", "2004-07", "2004-01-01T00:00:00"),
        ("weekly", "2024-01-01", "2024-12-31", "2024-01-10", "2024-01-08T00:00:00"),
        ("daily", "2024-01-01", "2024-12-31", "2024-02-29T18:30:00+02:00", "2024-02-29T00:00:00"),
        ("hourly", "2024-01-01", "2024-01-02", "2024-01-01T05:59:59Z", "2024-01-01T05:00:00"),
        (None, "2024-01-01", "2024-12-31", "2024-03-03T03:03:03Z", "2024-03-03T03:03:03"),
    ],
)
def test_a_time_selects_the_step_containing_it(
    resolution: str | None, start: str, end: str, time: str, step: str
) -> None:
    config = {"temporal": {"enabled": True, "start": start, "end": end, "resolution": resolution}}
    timeline = Timeline.of(config)
    assert timeline is not None
    assert timeline.resolve(time).isoformat() == step


@pytest.mark.parametrize(
    ("resolution", "time"),
    [
        ("monthly", "2022-12-31T23:59:59Z"),
        ("monthly", "2024-01-01"),  # after December's step
        ("yearly", "2011-01-01"),
        ("daily", "2025-01-01"),
        (None, "2025-01-01T00:00:01Z"),
    ],
)
def test_a_time_outside_every_step_is_400(resolution: str | None, time: str) -> None:
    end = "2010-01-01" if resolution == "yearly" else "2023-12-01"
    start = "2000-01-01" if resolution == "yearly" else "2023-01-01"
    if resolution in ("daily", None):
        start, end = "2024-01-01", "2024-12-31"
    config = {"temporal": {"enabled": True, "start": start, "end": end, "resolution": resolution}}
    timeline = Timeline.of(config)
    assert timeline is not None
    with pytest.raises(InvalidTime) as raised:
        timeline.resolve(time)
    assert raised.value.status_code == 400 and time in raised.value.message
