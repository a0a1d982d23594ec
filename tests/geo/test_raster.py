"""The COG engine: sources and the allow-list, render parameters, every operation, encoders."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from rio_tiler.io import Reader

from tests.conftest import base_settings
from tests.rasters import make_cog, range_server
from worldbase.apps import registry
from worldbase.core.errors import BadInput, DomainError, NotFound, UpstreamError
from worldbase.core.storage_backends import create_storage
from worldbase.geo import raster, raster_readers
from worldbase.geo.raster_params import RenderQuery, parse_render_params
from worldbase.geo.raster_sources import (
    SourceNotAllowed,
    aws_session,
    check_source_allowed,
    gdal_options,
    resolve_source,
)
from worldbase.settings import Settings

P = parse_render_params({})
# The tile holding the middle of the test raster (lon 5, lat 53.5) at zoom 7.
Z, X, Y = 7, 65, 41


def png(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raster") / "data"
    make_cog(root / "cog.tif")
    make_cog(
        root / "mercator.tif",
        crs="EPSG:3857",
        bounds=(222638.98, 6621293.72, 890555.93, 7558415.66),
    )
    make_cog(root / "one.tif", count=1)
    classes = np.zeros((1, 64, 64), "uint8")
    classes[0, :32] = 1
    classes[0, 32:, :16] = 2
    make_cog(root / "classes.tif", data=classes, nodata=0)
    (root / "text.tif").write_text("not a raster")
    return root


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """Settings whose raster folder holds the test rasters (the data dir is elsewhere)."""
    overrides.setdefault("worldbase_raster_dirs", [str(data_dir)])
    return base_settings(data_dir.parent / "wb-data", **overrides)


@pytest.fixture
def local(data_dir: Path) -> Settings:
    return settings_for(data_dir)


@pytest.fixture(scope="module")
def http_base(data_dir: Path) -> Iterator[str]:
    with range_server(data_dir) as base:
        yield base


@pytest.fixture(autouse=True)
def _fresh_readers() -> Iterator[None]:
    yield
    raster_readers.READERS.clear()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Allow-list and sources --------------------------------------------------------------------


def test_allowlist_rules(local: Settings, data_dir: Path) -> None:
    settings = settings_for(
        data_dir,
        worldbase_source_allowlist="http://data.internal:8080,s3://bucket/rasters/,10.20.0.0/16",
        worldbase_source_policy="allowlist",
        habitat_raster_url="https://habitats.example.org/h.tif",
    )
    for ok in (
        "http://data.internal:8080/a.tif",
        "http://data.internal:8080",
        "s3://bucket/rasters/a.tif",
        "http://10.20.3.4/a.tif",
        str(data_dir / "cog.tif"),
        f"file://{data_dir}/cog.tif",
    ):
        check_source_allowed(ok, settings)
    for refused in (
        "http://data.internal:8081/a.tif",
        "https://public.example.org/a.tif",  # strict mode: only the allow-list
        "s3://bucket/other/a.tif",
        "http://10.21.0.1/a.tif",
        "http://169.254.169.254/a.tif",
        "storage://uploads/a.tif",  # never from a request
        "/etc/passwd",
        str(data_dir / ".." / ".." / "etc" / "passwd"),
        "file:///etc/passwd",
        str(settings.data_dir / "worldbase.db"),
        "/vsicurl/http://10.20.3.4/a.tif",
    ):
        with pytest.raises(SourceNotAllowed) as err:
            check_source_allowed(refused, settings)
        assert err.value.status_code == 403
    # The public default: public addresses yes, private, loopback and metadata no.
    public = settings_for(data_dir)
    for ok in ("https://8.8.8.8/a.tif", "s3://any-bucket/a.tif"):
        check_source_allowed(ok, public)
    for refused in (
        "http://127.0.0.1/a.tif",
        "http://[::1]/a.tif",
        "http://[::ffff:10.0.0.1]/a.tif",
        "http://[64:ff9b::a9fe:a9fe]/a.tif",
        "http://192.168.1.1/a.tif",
        "http://100.100.100.200/a.tif",
        "http://224.0.0.1/a.tif",
        "http://0.0.0.0/a.tif",
    ):
        with pytest.raises(SourceNotAllowed):
            check_source_allowed(refused, public)
    # The configured habitat raster (exactly that) is readable, wherever it is.
    # (public through the habitats app: the registry gives the settings what apps publish)
    local_raster, _ = registry.configure(
        settings_for(data_dir, habitat_raster_url="/srv/habitats/classes.tif")
    )
    check_source_allowed("/srv/habitats/classes.tif", local_raster, own_storage="habitats/")
    check_source_allowed("/srv/habitats/classes.tif", local_raster)  # the game's /cog URLs
    with pytest.raises(SourceNotAllowed):
        check_source_allowed("/srv/habitats/other.tif", local_raster, own_storage="habitats/")
    check_source_allowed("storage://habitats/x.tif", local_raster, own_storage="habitats/")
    with pytest.raises(SourceNotAllowed):
        check_source_allowed("storage://bestiary/x.jpg", local_raster, own_storage="habitats/")
    for bad in (
        "ftp://data.internal:8080/a.tif",
        "https://user:pw@data.internal:8080/a.tif",
        "http://data.internal:8080/x/../../admin",
        "http://data.internal:8080/a\\b",
        "storage://../etc/passwd",
        "",
        "x" * 3000,
    ):
        with pytest.raises(BadInput):
            check_source_allowed(bad, settings)


def test_resolve_source(local: Settings, data_dir: Path) -> None:
    assert resolve_source("storage://up/a.tif", local, own_storage="up/") == str(
        local.local_storage_path / "up" / "a.tif"
    )
    s3 = settings_for(
        data_dir,
        storage_backend="s3",
        storage_bucket="b",
        storage_prefix="pre",
        worldbase_source_allowlist="s3://other/",
    )
    assert resolve_source("storage://up/a.tif", s3, own_storage="up/") == "/vsis3/b/pre/up/a.tif"
    assert resolve_source("s3://other/k.tif", s3) == "/vsis3/other/k.tif"
    with pytest.raises(SourceNotAllowed):
        resolve_source("s3://b/pre/up/a.tif", s3)  # our own bucket
    assert resolve_source(f"file://{data_dir}/cog.tif", local) == str(data_dir / "cog.tif")


def test_gdal_options(data_dir: Path) -> None:
    options = gdal_options(
        base_settings(
            data_dir,
            aws_endpoint_url="http://127.0.0.1:9000",
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )
    )
    assert options["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert options["GDAL_HTTP_MULTIPLEX"] == "YES"
    assert options["AWS_HTTPS"] == "NO"
    assert options["AWS_VIRTUAL_HOSTING"] == "FALSE"
    session = aws_session(
        base_settings(
            data_dir,
            aws_endpoint_url="http://127.0.0.1:9000",
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )
    )
    creds = session.get_credential_options()
    assert creds["AWS_S3_ENDPOINT"] == "127.0.0.1:9000" and creds["AWS_ACCESS_KEY_ID"] == "k"
    assert aws_session(base_settings(data_dir)).unsigned


# --- Operations on a local file ------------------------------------------------------------------


async def test_tile_pixels_and_formats(local: Settings, data_dir: Path) -> None:
    url = str(data_dir / "cog.tif")
    tile = await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=P)
    assert tile.media_type == "image/png"
    pixels = png(tile.content)
    assert pixels.shape == (256, 256, 4)
    assert (pixels[..., 3] == 255).all()  # fully inside the raster
    assert (pixels[..., 2] == 100).all()  # band 3 is constant
    assert pixels[128, 0, 0] < pixels[128, 255, 0]  # band 1 grows eastwards
    for fmt, kind, magic in (
        ("webp", "image/webp", b"RIFF"),
        ("jpeg", "image/jpeg", b"\xff\xd8"),
        ("tif", "image/tiff; application=geotiff", b"II"),
        ("npy", "application/x-binary", b"\x93NUMPY"),
    ):
        other = await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=P, fmt=fmt)
        assert other.media_type == kind and other.content.startswith(magic)
    big = await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=P, scale=2)
    assert png(big.content).shape == (512, 512, 4)
    sized = parse_render_params({"tilesize": 128, "return_mask": "false"})
    small = await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=sized)
    assert png(small.content).shape == (128, 128, 3)
    buffered = parse_render_params({"buffer": 2})
    assert (
        png((await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=buffered)).content).shape[
            0
        ]
        == 260
    )


async def test_render_options(local: Settings, data_dir: Path) -> None:
    url = str(data_dir / "cog.tif")
    one = parse_render_params({"bidx": "3", "rescale": "0,200"})
    gray = png((await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=one)).content)
    assert gray.shape == (256, 256, 2) and (abs(gray[..., 0].astype(int) - 127) <= 1).all()
    cmap = parse_render_params({"bidx": 3, "colormap": json.dumps({"100": "#ff0000"})})
    red = png((await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=cmap)).content)
    assert tuple(red[5, 5]) == (255, 0, 0, 255)
    named = parse_render_params({"bidx": [1], "colormap_name": "viridis"})
    assert (
        png((await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=named)).content).shape[2]
        == 4
    )
    ratio = parse_render_params({"expression": "b3/2", "rescale": [[0, 100]]})
    half = png((await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=ratio)).content)
    assert abs(int(half[5, 5, 0]) - 127) <= 1
    uint16 = parse_render_params({"expression": "b1*100"})
    assert (await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=uint16)).content


async def test_empty_tile_and_other_tms(local: Settings, data_dir: Path) -> None:
    url = str(data_dir / "cog.tif")
    empty = await raster.tile(url, settings=local, z=7, x=0, y=0, params=P)
    assert empty.content == b""
    crs84 = await raster.tile(url, settings=local, z=4, x=16, y=3, params=P, tms="WorldCRS84Quad")
    assert png(crs84.content).shape == (256, 256, 4)
    merc = await raster.tile(
        str(data_dir / "mercator.tif"), settings=local, z=Z, x=X, y=Y, params=P
    )
    assert png(merc.content).shape == (256, 256, 4)
    with pytest.raises(NotFound):
        await raster.tile(url, settings=local, z=1, x=0, y=0, params=P, tms="NoSuchTMS")
    for z, x, y in ((-1, 0, 0), (31, 0, 0), (3, 8, 0), (3, 0, -1)):
        with pytest.raises(BadInput):
            await raster.tile(url, settings=local, z=z, x=x, y=y, params=P)
    with pytest.raises(BadInput):
        await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=P, fmt="gif")


async def test_info_statistics_point_preview_tilejson(local: Settings, data_dir: Path) -> None:
    url = str(data_dir / "cog.tif")
    info = await raster.info(url, settings=local)
    assert info["count"] == 3 and info["dtype"] == "uint8"
    assert info["geographic_bounds"] == pytest.approx([2.0, 51.0, 8.0, 56.0])
    stats = await raster.statistics(
        url, settings=local, params=P, percentiles=[10, 90], bins=4, hist_range=(0, 256)
    )
    assert set(stats) == {"b1", "b2", "b3"}
    assert stats["b3"]["min"] == stats["b3"]["max"] == 100
    assert "percentile_10" in stats["b1"] and len(stats["b1"]["histogram"][0]) == 4
    classes = await raster.statistics(
        str(data_dir / "classes.tif"), settings=local, params=P, categorical=True
    )
    counts = classes["b1"]["histogram"]
    assert set(counts[1]) == {1, 2} and counts[0][0] > counts[0][1]
    value = await raster.point(url, settings=local, lon=7.99, lat=53.5, params=P)
    assert value["values"][0] >= 250 and value["values"][2] == 100
    with pytest.raises(NotFound):
        await raster.point(url, settings=local, lon=20, lat=10, params=P)
    with pytest.raises(BadInput):
        await raster.point(url, settings=local, lon=200, lat=10, params=P)
    preview = await raster.preview(url, settings=local, params=P, max_size=64)
    assert png(preview.content).shape == (64, 64, 4)
    tj = await raster.tilejson(url, settings=local, tiles_url="http://t/{z}/{x}/{y}")
    assert tj["bounds"] == pytest.approx([2.0, 51.0, 8.0, 56.0]) and tj["tiles"] == [
        "http://t/{z}/{x}/{y}"
    ]
    assert 0 <= tj["minzoom"] <= tj["maxzoom"]
    with pytest.raises(BadInput):
        await raster.statistics(url, settings=local, params=P, max_size=5)


@pytest.mark.parametrize(
    "raw",
    [
        {"bidx": "4"},
        {"bidx": "0"},
        {"bidx": "a"},
        {"expression": "b1+"},
        {"expression": "b9*2"},
        {"expression": "__import__('os')"},
        {"expression": "1+1"},
        {"rescale": "1"},
        {"rescale": "5,1"},
        {"rescale": "a,b"},
        {"colormap": "{"},
        {"colormap": '{"a": "#fff"}'},
        {"colormap": '{"1": "red"}'},
        {"colormap_name": "nope"},
        {"resampling": "magic"},
        {"return_mask": "maybe"},
        {"buffer": "0.3"},
        {"tilesize": "5000"},
        {"nodata": "x"},
    ],
)
async def test_bad_render_parameters(local: Settings, data_dir: Path, raw: dict[str, Any]) -> None:
    with pytest.raises(BadInput):
        params = parse_render_params(raw)
        await raster.tile(str(data_dir / "cog.tif"), settings=local, z=Z, x=X, y=Y, params=params)


def test_render_query_merges_defaults() -> None:
    query = RenderQuery(colormap_name="viridis", rescale=["0,10"])
    params = query.params({"colormap": {"1": "#ff0000"}, "rescale": "0,30", "bidx": "1"})
    assert params.colormap_name == "viridis" and params.colormap is None
    assert params.rescale == ((0.0, 10.0),) and params.bidx == (1,)
    assert RenderQuery(bidx=["1", "2"]).params().bidx == (1, 2)
    assert RenderQuery().params({"tileParams": 1, "return_mask": True}).return_mask is True
    assert parse_render_params({"rescale": "0,1"}).cache_key() != P.cache_key()


async def test_missing_and_corrupt_local_files(local: Settings, data_dir: Path) -> None:
    with pytest.raises(NotFound):
        await raster.info(str(data_dir / "missing.tif"), settings=local)
    with pytest.raises(BadInput):
        await raster.info(str(data_dir / "text.tif"), settings=local)
    with pytest.raises(SourceNotAllowed):
        await raster.info("/etc/hostname", settings=local)


# --- Remote sources ----------------------------------------------------------------------------


async def test_http_source_with_range_requests(data_dir: Path, http_base: str) -> None:
    settings = base_settings(data_dir, worldbase_source_allowlist=http_base + "/")
    url = f"{http_base}/cog.tif"
    tile = await raster.tile(url, settings=settings, z=Z, x=X, y=Y, params=P)
    assert png(tile.content).shape == (256, 256, 4)
    assert (await raster.info(url, settings=settings))["count"] == 3
    # An allowed redirect is followed; one leaving the allow-list is refused.
    hop = f"{http_base}/redirect?to={url}"
    assert (await raster.info(hop, settings=settings))["count"] == 3
    raster_readers.READERS.clear()
    out = f"{http_base}/redirect?to=http://localhost:{closed_port()}/x.tif"
    with pytest.raises(SourceNotAllowed):
        await raster.info(out, settings=settings)
    with pytest.raises(UpstreamError):
        await raster.info(f"{http_base}/missing.tif", settings=settings)
    with pytest.raises(SourceNotAllowed):
        await raster.info(url, settings=settings_for(data_dir))


async def test_unreachable_source_is_502(data_dir: Path) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    settings = base_settings(data_dir, worldbase_source_allowlist=base)
    with pytest.raises(UpstreamError) as err:
        await raster.tile(f"{base}/a.tif", settings=settings, z=Z, x=X, y=Y, params=P)
    assert err.value.status_code == 502


@pytest.mark.s3
async def test_s3_and_storage_sources(
    data_dir: Path, s3_endpoint: str, make_settings: Callable[..., Settings]
) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="rasters")
    s3.put_object(Bucket="rasters", Key="cogs/cog.tif", Body=(data_dir / "cog.tif").read_bytes())
    settings = base_settings(
        data_dir,
        aws_endpoint_url=s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        worldbase_source_allowlist="s3://rasters/cogs/",
        worldbase_source_policy="allowlist",
    )
    tile = await raster.tile(
        "s3://rasters/cogs/cog.tif", settings=settings, z=Z, x=X, y=Y, params=P
    )
    assert png(tile.content).shape == (256, 256, 4)
    with pytest.raises(SourceNotAllowed):
        await raster.info("s3://rasters/other.tif", settings=settings)
    with pytest.raises(DomainError) as err:
        await raster.info("s3://rasters/cogs/missing.tif", settings=settings)
    assert err.value.status_code == 502


async def test_storage_source_on_the_current_backend(
    data_dir: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    storage = create_storage(settings)
    try:
        await storage.put("uploads/cog.tif", (data_dir / "cog.tif").read_bytes())
        tile = await raster.tile(
            "storage://uploads/cog.tif",
            settings=settings,
            z=Z,
            x=X,
            y=Y,
            params=P,
            own_storage="uploads/",
        )
        assert png(tile.content).shape == (256, 256, 4)
        with pytest.raises(DomainError) as err:
            await raster.info(
                "storage://uploads/none.tif", settings=settings, own_storage="uploads/"
            )
        assert err.value.status_code in (404, 502)
    finally:
        await storage.close()


# --- Encoder and reader pool ---------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_encode_png_round_trip(channels: int) -> None:
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 256, (37, 53, channels), dtype=np.uint8)
    decoded = png(raster.encode_png(pixels))
    assert (decoded.reshape(37, 53, channels) == pixels).all()


async def test_png_tiles_are_no_bigger_than_gdals(local: Settings, data_dir: Path) -> None:
    """A PNG tile costs no more bytes than rio-tiler's own render of it (GDAL's PNG driver,
    what TiTiler serves): speed is not bought with every map user's bandwidth."""
    url = str(data_dir / "cog.tif")
    ours = await raster.tile(url, settings=local, z=Z, x=X, y=Y, params=P)
    with Reader(url) as src:
        theirs = src.tile(X, Y, Z).render(img_format="PNG")
    assert len(ours.content) <= 1.1 * len(theirs)


async def test_readers_are_reused_and_bounded(local: Settings, data_dir: Path) -> None:
    pool = raster_readers.READERS
    url = str(data_dir / "cog.tif")
    await raster.info(url, settings=local)
    with pool.reader(url, local) as first:
        pass
    with pool.reader(url, local) as second:
        assert second is first
    small = raster_readers.ReaderPool(max_sources=1, max_idle=1)
    with small.reader(url, local) as a:
        pass
    with small.reader(str(data_dir / "one.tif"), local):
        pass
    with small.reader(url, local) as b:
        assert b is not a  # evicted by the other source
    small.clear()


async def test_silent_source_is_504(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that accepts the connection and never answers: a timeout, 504."""
    import threading

    from worldbase.geo import raster_relay

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    monkeypatch.setattr(raster_relay, "UPSTREAM_TIMEOUT", 0.5)
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    settings = base_settings(data_dir, worldbase_source_allowlist=base)
    try:
        with pytest.raises(DomainError) as err:
            await raster.info(f"{base}/slow.tif", settings=settings)
        assert err.value.status_code == 504
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
