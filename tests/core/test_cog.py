"""The TiTiler-compatible `/cog/...` endpoints: behind the allow-list, in the error shape."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.builders import assert_error, register_user
from tests.conftest import BACKEND, free_port
from tests.rasters import make_cog, range_server
from worldbase.geo import raster
from worldbase.settings import Settings

Z, X, Y = 7, 65, 41


def png(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("cog")
    make_cog(root / "rgb.tif")
    (root / "text.tif").write_text("not a raster")
    with range_server(root) as base:
        yield base


@pytest.fixture
def cog(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    http: str,
) -> Iterator[TestClient]:
    yield app_factory(make_settings(worldbase_source_allowlist=[f"{http}/"]))
    raster.READERS.clear()


def q(url: str) -> str:
    return quote(url, safe="")


def test_titiler_paths(cog: TestClient, http: str) -> None:
    url = q(f"{http}/rgb.tif")
    tj = cog.get(f"/cog/WebMercatorQuad/tilejson.json?url={url}&colormap_name=viridis&bidx=1")
    assert tj.status_code == 200, tj.text
    body = tj.json()
    assert body["tiles"][0].startswith("http://testserver/cog/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert "colormap_name=viridis" in body["tiles"][0]
    assert body["bounds"] == pytest.approx([2.0, 51.0, 8.0, 56.0])
    tile = cog.get(f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}?url={url}")
    assert tile.status_code == 200 and png(tile.content).shape[:2] == (256, 256)  # JPEG or PNG
    webp = cog.get(f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}.webp?url={url}")
    assert webp.headers["content-type"] == "image/webp"
    colormap = q('{"100": "#ff0000"}')
    red = cog.get(
        f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}.png?url={url}&bidx=3&colormap={colormap}"
    )
    assert tuple(png(red.content)[4, 4]) == (255, 0, 0, 255)
    legacy = cog.get(f"/cog/tiles/{Z}/{X}/{Y}?url={url}&rescale=0,255&return_mask=true")
    assert legacy.status_code == 200 and png(legacy.content).shape == (256, 256, 4)
    assert legacy.headers["etag"] and "max-age" in legacy.headers["cache-control"]
    assert cog.get(
        f"/cog/tiles/{Z}/{X}/{Y}?url={url}", headers={"If-None-Match": legacy.headers["etag"]}
    ).status_code in (200, 304)
    assert cog.get(f"/cog/tiles/WebMercatorQuad/7/0/0?url={url}").status_code == 204
    assert cog.get(f"/cog/tiles/7/0/0?url={url}").status_code == 204
    info = cog.get(f"/cog/info?url={url}").json()
    assert info["count"] == 3 if "count" in info else len(info["band_descriptions"]) == 3
    stats = cog.get(f"/cog/statistics?url={url}&bidx=3").json()
    assert stats["b3"]["min"] == 100
    point = cog.get(f"/cog/point/5,53.5?url={url}").json()
    assert point["values"][2] == 100
    preview = cog.get(f"/cog/preview.png?url={url}&max_size=64")
    assert preview.status_code == 200 and png(preview.content).shape[1] == 64


def test_anyone_may_call_it_and_the_allow_list_decides(cog: TestClient, http: str) -> None:
    _, token = register_user(cog, "someone@example.org")
    _, admin = register_user(cog, "root@example.org", admin=True)
    url = q(f"{http}/rgb.tif")
    for headers in ({}, {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {admin}"}):
        assert cog.get(f"/cog/info?url={url}", headers=headers).status_code == 200
        for refused in ("https://evil.example.org/a.tif", "/etc/passwd", "file:///etc/hostname"):
            assert_error(cog.get(f"/cog/info?url={q(refused)}", headers=headers), 403)
            assert_error(
                cog.get(f"/cog/tiles/WebMercatorQuad/1/0/0?url={q(refused)}", headers=headers), 403
            )
            assert_error(cog.get(f"/cog/tiles/1/0/0?url={q(refused)}", headers=headers), 403)


def test_bad_input(cog: TestClient, http: str) -> None:
    url = q(f"{http}/rgb.tif")
    tile = f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}?url={url}"
    for query in (
        "&bidx=4",
        "&expression=b9*2",
        "&colormap=%7B",
        "&colormap_name=nope",
        "&rescale=a",
    ):
        response = cog.get(tile + query)
        assert 400 <= response.status_code < 500, (query, response.text)
        assert_error(response, response.status_code)
        legacy = cog.get(f"/cog/tiles/{Z}/{X}/{Y}?url={url}{query}")
        assert_error(legacy, 422)
    assert_error(cog.get(f"/cog/tiles/WebMercatorQuad/30/0/0?url={url}"), 422)
    assert_error(cog.get(f"/cog/tiles/WebMercatorQuad/2/4/0?url={url}"), 422)
    assert_error(cog.get(f"/cog/tiles/NoSuchTms/2/0/0?url={url}"), 404)
    assert_error(cog.get(f"/cog/tiles/25/0/0?url={url}"), 422)
    assert_error(cog.get("/cog/info"), 422)
    assert_error(cog.get(f"/cog/info?url={q('ftp://x/y.tif')}"), 422)
    assert_error(cog.get(f"/cog/info?url={q(f'{http}/missing.tif')}"), 502)
    assert_error(cog.get(f"/cog/tiles/1/0/0?url={q(f'{http}/missing.tif')}"), 502)
    assert_error(cog.get(f"/cog/point/-40,10?url={url}"), 404)


def test_unreachable_source(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    client = app_factory(make_settings(worldbase_source_allowlist=[base]))
    assert_error(client.get(f"/cog/info?url={q(base + '/a.tif')}"), 502)
    assert_error(client.get(f"/cog/tiles/1/0/0?url={q(base + '/a.tif')}"), 502)


def test_storage_objects(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    client = app_factory(make_settings())
    storage = client.app.state.services.storage  # type: ignore[attr-defined]
    cog = make_cog(tmp_path / "x.tif")
    client.portal.call(storage.put, "cogs/x.tif", cog.read_bytes())  # type: ignore[union-attr]
    tile = client.get(f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}?url=storage://cogs/x.tif")
    assert tile.status_code == 200, tile.text
    assert client.get("/cog/info?url=storage://cogs/x.tif").status_code == 200
    assert client.get(f"/cog/tiles/{Z}/{X}/{Y}?url=storage://cogs/x.tif").status_code == 200
    if BACKEND == "served":
        bucket = client.app.state.settings.storage_bucket  # type: ignore[attr-defined]
        # s3:// of a bucket outside the allow-list is refused even with working credentials.
        assert_error(client.get(f"/cog/info?url=s3://{bucket}/cogs/x.tif"), 403)
        allowed = app_factory(make_settings(worldbase_source_allowlist=[f"s3://{bucket}/"]))
        assert allowed.get(f"/cog/info?url=s3://{bucket}/cogs/x.tif").status_code == 200
    raster.READERS.clear()
