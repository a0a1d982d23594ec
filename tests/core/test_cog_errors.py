"""Requests that used to be 500s on `/cog/*` are 4xx in the error shape (issue 18, item 10):
bad `algorithm_params` and rasters without a CRS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.builders import assert_error
from tests.rasters import make_cog, range_server
from worldbase.geo import raster_readers
from worldbase.settings import Settings

Z, X, Y = 7, 65, 41


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("cog-errors")
    make_cog(root / "rgb.tif")
    make_cog(root / "dem.tif", count=1, dtype="float32")
    make_cog(root / "nocrs.tif", crs=None)  # type: ignore[arg-type]
    with range_server(root) as base:
        yield base


@pytest.fixture
def cog(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    http: str,
) -> Iterator[TestClient]:
    yield app_factory(make_settings(worldbase_source_allowlist=[f"{http}/"]))
    raster_readers.READERS.clear()


ENDPOINTS = (
    f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}.png",
    "/cog/preview.png",
    "/cog/statistics",
    "/cog/point/5,53.5",
    f"/cog/tiles/{Z}/{X}/{Y}",
)
BAD_PARAMS = ("null", "[1]", "1", '"x"', '{"azimuth": "east"}', '{"bands": 7}', "{not json")


@pytest.mark.parametrize("algorithm", ["hillshade", "slope", "normalizedIndex", "sum"])
def test_bad_algorithm_params_are_4xx(cog: TestClient, http: str, algorithm: str) -> None:
    for name in ("dem.tif", "rgb.tif"):
        url = quote(f"{http}/{name}", safe="")
        for params in BAD_PARAMS:
            for endpoint in ENDPOINTS:
                response = cog.get(
                    f"{endpoint}?url={url}&algorithm={algorithm}"
                    f"&algorithm_params={quote(params, safe='')}"
                )
                assert response.status_code < 500, (endpoint, name, params, response.text)
                if response.status_code >= 400:
                    assert_error(response, response.status_code)
        good = cog.get(
            f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}.png?url={url}&algorithm={algorithm}"
        )
        assert good.status_code < 500, good.text


def test_null_algorithm_params_are_422(cog: TestClient, http: str) -> None:
    url = quote(f"{http}/dem.tif", safe="")
    path = f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}.png?url={url}&algorithm=hillshade"
    assert_error(cog.get(f"{path}&algorithm_params=null"), 422)
    azimuth = quote('{"azimuth": 90}', safe="")
    ok = cog.get(f"{path}&algorithm_params={azimuth}")
    assert ok.status_code == 200, ok.text


def test_a_raster_without_a_crs_is_422(cog: TestClient, http: str) -> None:
    url = quote(f"{http}/nocrs.tif", safe="")
    paths = (
        "/cog/info",
        "/cog/statistics",
        "/cog/preview.png",
        "/cog/point/5,53.5",
        f"/cog/tiles/WebMercatorQuad/{Z}/{X}/{Y}.png",
        "/cog/WebMercatorQuad/tilejson.json",
        f"/cog/tiles/{Z}/{X}/{Y}",
    )
    for path in paths:
        body = assert_error(cog.get(f"{path}?url={url}"), 422)
        assert "CRS" in body["message"], (path, body)
