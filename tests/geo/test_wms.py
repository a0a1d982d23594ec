"""The WMS client against a real MapServer on loopback, and against misbehaving servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import morecantile
import pytest

from tests.conftest import free_port
from tests.mapserver import (
    BLUE,
    GREEN,
    MAGENTA,
    RED,
    YELLOW,
    WmsServer,
    pixel,
    require_mapserver,
    start_wms,
)
from worldbase.core.errors import BadInput, Forbidden, UpstreamError, UpstreamTimeout
from worldbase.geo.wms import (
    WmsLimits,
    WmsSource,
    build_url,
    get_capabilities,
    get_map,
    getmap_params,
    parse_time_extent,
)

# z=4 x=8 y=5 spans lon 0..22.5, lat ~41..55.8: all four quadrants and, east of lon 20, nothing.
TILE = (4, 8, 5)
PROBES = {(5.0, 55.0): "nw", (15.0, 55.0): GREEN, (5.0, 45.0): YELLOW, (15.0, 45.0): BLUE}


def allow_all(url: str) -> None:
    return None


def probe(png: bytes, lon: float, lat: float, size: int = 256) -> tuple[int, ...]:
    z, x, y = TILE
    tms = morecantile.tms.get("WebMercatorQuad")
    box = tms.xy_bounds(morecantile.Tile(x, y, z))
    px, py = tms.xy(lon, lat)
    col = int((px - box.left) / (box.right - box.left) * size)
    row = int((box.top - py) / (box.top - box.bottom) * size)
    return pixel(png, col, row)


def check_colours(png: bytes, nw: tuple[int, int, int], size: int = 256) -> None:
    for (lon, lat), colour in PROBES.items():
        expected = nw if colour == "nw" else colour
        assert probe(png, lon, lat, size) == (*expected, 255), (lon, lat)
    assert probe(png, 21.5, 50.0, size)[3] == 0  # outside the data: transparent


@pytest.fixture(scope="module")
def wms_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WmsServer]:
    require_mapserver()
    yield from start_wms(tmp_path_factory.mktemp("mapserver"))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def test_getmap_parameters_per_version() -> None:
    box = (0.0, 1.0, 2.0, 3.0)
    new = WmsSource(url="http://h/wms", layers="a,b", dimensions={"elevation": "-0.5", "depth": 3})
    params = getmap_params(new, bbox=box, width=256, height=256, time="2024-01-01")
    assert params["VERSION"] == "1.3.0" and params["CRS"] == "EPSG:3857" and "SRS" not in params
    assert params["BBOX"] == "0.0,1.0,2.0,3.0" and params["TRANSPARENT"] == "TRUE"
    assert params["ELEVATION"] == "-0.5" and params["DIM_DEPTH"] == "3"
    assert params["TIME"] == "2024-01-01"
    old = WmsSource(url="http://h/wms", layers="a", version="1.1.1", transparent=False)
    params = getmap_params(old, bbox=box, width=512, height=512)
    assert params["SRS"] == "EPSG:3857" and "CRS" not in params and "TIME" not in params
    assert params["WIDTH"] == "512" and params["TRANSPARENT"] == "FALSE"
    with pytest.raises(BadInput):
        getmap_params(WmsSource(url="x", layers="a", version="1.0.0"), bbox=box, width=1, height=1)


def test_build_url_keeps_the_configured_query_but_not_our_keys() -> None:
    url = build_url("http://h/cgi?map=/a.map&request=GetFeature&srs=X&token=k", {"REQUEST": "Get"})
    assert url == "http://h/cgi?map=%2Fa.map&token=k&REQUEST=Get"


def test_time_extents() -> None:
    assert parse_time_extent(None) is None
    interval = parse_time_extent(["2024-01-01/2024-03-01/P1M"])
    assert interval is not None
    assert (interval.start, interval.end, interval.resolution) == (
        "2024-01-01",
        "2024-03-01",
        "monthly",
    )
    listed = parse_time_extent(["2024-01-02T00:00:00Z", " 2023-12-31T00:00:00Z", "2024-01-01"])
    assert listed is not None and listed.resolution is None
    assert (listed.start, listed.end) == ("2023-12-31T00:00:00Z", "2024-01-02T00:00:00Z")


async def test_a_tile_has_the_geotiffs_colours(
    http: httpx.AsyncClient, wms_server: WmsServer
) -> None:
    z, x, y = TILE
    source = WmsSource(url=wms_server.url, layers="quads")
    image = await get_map(http, source, z=z, x=x, y=y, check_url=allow_all)
    assert image.media_type == "image/png"
    check_colours(image.content, RED)
    # WMS 1.1.1 (SRS), 512 px, a time step of the TIME dimension passed through.
    old = WmsSource(url=wms_server.url, layers="quads", version="1.1.1")
    image = await get_map(
        http, old, z=z, x=x, y=y, tilesize=512, time="2024-02-01", check_url=allow_all
    )
    check_colours(image.content, MAGENTA, size=512)
    with pytest.raises(BadInput):
        await get_map(http, source, z=z, x=x, y=y, tilesize=300, check_url=allow_all)


async def test_capabilities_name_layers_bounds_and_time(
    http: httpx.AsyncClient, wms_server: WmsServer
) -> None:
    for version in ("1.3.0", "1.1.1"):
        layers = await get_capabilities(http, wms_server.url, version=version, check_url=allow_all)
        assert "quads" in layers and "tindex" not in layers
        quads = layers["quads"]
        assert quads.bounds == pytest.approx((0.0, 40.0, 20.0, 60.0))
        assert quads.time is not None
        assert (quads.time.start, quads.time.end, quads.time.resolution) == (
            "2024-01-01",
            "2024-02-01",
            "monthly",
        )


async def test_upstream_failures_are_502_or_504(
    http: httpx.AsyncClient, wms_server: WmsServer
) -> None:
    base = wms_server.base
    z, x, y = TILE

    async def tile(url: str, layers: str = "quads", **limits: float) -> None:
        source = WmsSource(url=url, layers=layers)
        await get_map(http, source, z=z, x=x, y=y, check_url=allow_all, limits=WmsLimits(**limits))

    with pytest.raises(UpstreamTimeout) as timeout:
        await tile(f"{base}/slow", timeout=0.3)
    assert timeout.value.status_code == 504 and timeout.value.detail["reason"] == "timeout"
    with pytest.raises(UpstreamTimeout):  # each byte in time, the whole answer not
        await tile(f"{base}/drip", timeout=0.3)
    with pytest.raises(UpstreamError) as error:
        await tile(f"{base}/error")
    assert "500" in error.value.message and "Internal failure" in error.value.message
    assert error.value.detail["upstream_status"] == 500
    with pytest.raises(UpstreamError) as error:
        await tile(f"{base}/exception")
    assert "Invalid layer" in error.value.message
    with pytest.raises(UpstreamError) as error:  # MapServer's own ServiceException
        await tile(wms_server.url, layers="no_such_layer")
    assert error.value.status_code == 502 and "msWMSLoadGetMapParams" in error.value.message
    with pytest.raises(UpstreamError) as error:
        await tile(f"{base}/html")
    assert "Maintenance until noon" in error.value.message
    with pytest.raises(UpstreamError) as error:
        await tile(f"{base}/big", max_bytes=1024 * 1024)
    assert error.value.detail["reason"] == "too large"
    with pytest.raises(UpstreamError) as error:
        await tile(f"http://127.0.0.1:{free_port()}/wms")
    assert error.value.message.startswith("The WMS could not be reached")
    with pytest.raises(UpstreamError):
        await get_capabilities(http, f"{base}/html", check_url=allow_all)
    with pytest.raises(UpstreamError):
        await get_capabilities(http, f"{base}/exception", check_url=allow_all)


async def test_redirects_are_checked_hop_by_hop(
    http: httpx.AsyncClient, wms_server: WmsServer
) -> None:
    z, x, y = TILE
    allowed = f"{wms_server.base}/"

    def only_ours(url: str) -> None:
        if not url.startswith(allowed):
            raise Forbidden(f"{url} is not an allowed source")

    inside = WmsSource(url=f"{wms_server.base}/redirect?to=/wms", layers="quads")
    image = await get_map(http, inside, z=z, x=x, y=y, check_url=only_ours)
    check_colours(image.content, RED)
    outside = WmsSource(
        url=f"{wms_server.base}/redirect?to=http://169.254.169.254/latest/", layers="quads"
    )
    with pytest.raises(Forbidden):
        await get_map(http, outside, z=z, x=x, y=y, check_url=only_ours)
    loop = WmsSource(url=f"{wms_server.base}/loop", layers="quads")
    with pytest.raises(UpstreamError) as error:
        await get_map(http, loop, z=z, x=x, y=y, check_url=only_ours)
    assert "redirected" in error.value.message
