"""The COG engine: tiles, info, statistics, previews, point values and TileJSON of a raster.

Built on rio-tiler (reads, warps, masks) with Worldbase's own pieces around it:

- sources are checked by the source policy and resolved in `geo.raster_sources`
  (http(s) through the policy relay, s3://, storage://, local raster folders), opened
  read-only with the GeoTIFF driver only (`SafeReader`), with the GDAL settings from there;
- opened datasets are pooled, and rendering runs in a dedicated thread pool, never on the
  event loop (`geo.raster_readers`); GDAL, numpy and the PNG encoder
  (`geo.raster_encode`) release the GIL there.

Tiles outside the raster's bounds are empty (`content == b""`): routes answer `204`, as
`geo.tile_cache.serve` does for every empty tile.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import morecantile
import numpy
from rio_tiler.constants import WEB_MERCATOR_TMS, WGS84_CRS
from rio_tiler.errors import RioTilerError, TileOutsideBounds
from rio_tiler.io import Reader

from worldbase.core.errors import BadInput, NotFound
from worldbase.geo.raster_encode import encode, encode_png, media_type
from worldbase.geo.raster_params import RenderParams, RenderQuery, RenderQueryDep
from worldbase.geo.raster_readers import band_count, check_bands, run_in_pool, with_reader
from worldbase.geo.raster_sources import STORAGE_SCHEME, check_source_allowed, resolve_source
from worldbase.settings import Settings

__all__ = [
    "STORAGE_SCHEME",
    "RenderParams",
    "RenderQuery",
    "RenderQueryDep",
    "Rendered",
    "check_source_allowed",
    "encode",
    "encode_png",
    "info",
    "media_type",
    "point",
    "preview",
    "statistics",
    "tile",
    "tilejson",
    "tms_or_raise",
]


T = TypeVar("T")

DEFAULT_TMS = "WebMercatorQuad"
MAX_PREVIEW = 2048
MAX_STATS_SIZE = 2048


@dataclass(frozen=True)
class Rendered:
    content: bytes  # b"" for an empty tile (outside the raster)
    media_type: str


# --- Tile matrix sets ------------------------------------------------------------------------


_TMS: dict[str, morecantile.TileMatrixSet] = {DEFAULT_TMS: WEB_MERCATOR_TMS}


def tms_or_raise(name: str) -> morecantile.TileMatrixSet:
    """The TileMatrixSet by id, one object per id (readers in the pool are bound to it)."""
    found = _TMS.get(name)
    if found is not None:
        return found
    try:
        found = morecantile.tms.get(name)
    except Exception:
        raise NotFound(
            f"Unknown TileMatrixSet {name!r}",
            detail={"known": sorted(morecantile.tms.list())},
        ) from None
    _TMS[name] = found
    return found


def validate_tms_tile(tms: morecantile.TileMatrixSet, z: int, x: int, y: int) -> None:
    if not tms.minzoom <= z <= tms.maxzoom:
        raise BadInput(
            f"Tile zoom {z} is out of range: {tms.minzoom} to {tms.maxzoom}",
            detail={"reason": "zoom out of range", "z": z},
        )
    matrix = tms.matrix(z)
    for name, value, size in (("x", x, matrix.matrixWidth), ("y", y, matrix.matrixHeight)):
        if not 0 <= value < size:
            raise BadInput(
                f"Tile {name}={value} is out of range at zoom {z}: 0 to {size - 1}",
                detail={"reason": f"{name} out of range", "z": z, name: value},
            )


# --- Operations ------------------------------------------------------------------------------


async def _read(
    url: str,
    settings: Settings,
    own_storage: str | None,
    fn: Callable[[Reader], T],
    tms: morecantile.TileMatrixSet | None = None,
) -> T:
    """`fn` with a pooled reader of the raster at `url` (checked against the allow-list), in
    the render threads."""
    source = resolve_source(url, settings, own_storage=own_storage)
    return await run_in_pool(lambda: with_reader(source, settings, fn, tms))


def _read_options(params: RenderParams) -> dict[str, Any]:
    options: dict[str, Any] = {
        "indexes": None if params.expression else params.bidx,
        "expression": params.expression,
        "resampling_method": params.resampling,
    }
    if params.nodata is not None:
        options["nodata"] = params.nodata
    return options


def _tile_sync(
    reader: Reader,
    *,
    tms: morecantile.TileMatrixSet,
    z: int,
    x: int,
    y: int,
    params: RenderParams,
    fmt: str,
    scale: int,
) -> bytes:
    check_bands(params, band_count(reader))
    if not reader.tile_exists(x, y, z):
        return b""
    size = (params.tilesize or tms.matrix(z).tileWidth) * scale
    with warnings.catch_warnings(action="ignore"):
        try:
            img = reader.tile(x, y, z, tilesize=size, buffer=params.buffer, **_read_options(params))
        except TileOutsideBounds:
            return b""
    return encode(img, params, fmt)


async def tile(
    url: str,
    *,
    settings: Settings,
    own_storage: str | None = None,
    z: int,
    x: int,
    y: int,
    params: RenderParams,
    fmt: str = "png",
    tms: str = DEFAULT_TMS,
    scale: int = 1,
) -> Rendered:
    """Tile z/x/y of the raster at `url` (checked against the allow-list)."""
    kind = media_type(fmt)
    matrix_set = tms_or_raise(tms)
    validate_tms_tile(matrix_set, z, x, y)
    if scale not in (1, 2, 3, 4):
        raise BadInput("Tile scale must be 1 to 4 (e.g. @2x)")
    fn = partial(_tile_sync, tms=matrix_set, z=z, x=x, y=y, params=params, fmt=fmt, scale=scale)
    content = await _read(url, settings, own_storage, fn, matrix_set)
    return Rendered(content, kind)


def _info_sync(reader: Reader) -> dict[str, Any]:
    data: dict[str, Any] = reader.info().model_dump(mode="json", exclude_none=True)
    try:
        west, south, east, north = reader.get_geographic_bounds(WGS84_CRS)
        data["geographic_bounds"] = [west, south, east, north]
    except RioTilerError:
        data["geographic_bounds"] = None
    data["count"] = band_count(reader)
    data["minzoom"], data["maxzoom"] = reader.minzoom, reader.maxzoom
    return data


async def info(url: str, *, settings: Settings, own_storage: str | None = None) -> dict[str, Any]:
    """rio-tiler's Info (bounds, CRS, dtype, bands, overviews...) plus WGS84 bounds and zooms."""
    return await _read(url, settings, own_storage, _info_sync)


def _statistics_sync(
    reader: Reader,
    *,
    params: RenderParams,
    categorical: bool,
    categories: list[float] | None,
    percentiles: list[int] | None,
    bins: int | list[float] | None,
    hist_range: tuple[float, float] | None,
    max_size: int,
) -> dict[str, Any]:
    check_bands(params, band_count(reader))
    hist_options: dict[str, Any] = {}
    if bins is not None:
        hist_options["bins"] = bins
    if hist_range is not None:
        hist_options["range"] = hist_range
    with warnings.catch_warnings(action="ignore"):
        stats = reader.statistics(
            categorical=categorical,
            categories=categories,
            percentiles=percentiles,
            hist_options=hist_options or None,
            max_size=max_size,
            **_read_options(params),
        )
    return {band: _finite(value.model_dump(mode="json")) for band, value in stats.items()}


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


async def statistics(
    url: str,
    *,
    settings: Settings,
    own_storage: str | None = None,
    params: RenderParams,
    categorical: bool = False,
    categories: list[float] | None = None,
    percentiles: list[int] | None = None,
    bins: int | list[float] | None = None,
    hist_range: tuple[float, float] | None = None,
    max_size: int = 1024,
) -> dict[str, Any]:
    """Per-band statistics (min/max/mean/percentiles/histogram, or category counts)."""
    if not 16 <= max_size <= MAX_STATS_SIZE:
        raise BadInput(f"max_size must be between 16 and {MAX_STATS_SIZE}")
    if percentiles is not None and not all(0 <= p <= 100 for p in percentiles):
        raise BadInput("percentiles must be between 0 and 100")
    fn = partial(
        _statistics_sync,
        params=params,
        categorical=categorical,
        categories=categories,
        percentiles=percentiles,
        bins=bins,
        hist_range=hist_range,
        max_size=max_size,
    )
    return await _read(url, settings, own_storage, fn)


def _preview_sync(reader: Reader, *, params: RenderParams, fmt: str, max_size: int) -> bytes:
    check_bands(params, band_count(reader))
    with warnings.catch_warnings(action="ignore"):
        img = reader.preview(max_size=max_size, **_read_options(params))
    return encode(img, params, fmt)


async def preview(
    url: str,
    *,
    settings: Settings,
    own_storage: str | None = None,
    params: RenderParams,
    fmt: str = "png",
    max_size: int = 1024,
) -> Rendered:
    """The whole raster, its longest side at most `max_size` pixels."""
    kind = media_type(fmt)
    if not 16 <= max_size <= MAX_PREVIEW:
        raise BadInput(f"max_size must be between 16 and {MAX_PREVIEW}")
    fn = partial(_preview_sync, params=params, fmt=fmt, max_size=max_size)
    return Rendered(await _read(url, settings, own_storage, fn), kind)


def _point_sync(reader: Reader, *, lon: float, lat: float, params: RenderParams) -> dict[str, Any]:
    check_bands(params, band_count(reader))
    with warnings.catch_warnings(action="ignore"):
        data = reader.point(lon, lat, **_read_options(params))
    values = [
        None if bool(masked) else _finite(float(value))
        for value, masked in zip(data.array.data, numpy.ma.getmaskarray(data.array), strict=True)
    ]
    return {"coordinates": [lon, lat], "values": values, "band_names": list(data.band_names)}


async def point(
    url: str,
    *,
    settings: Settings,
    own_storage: str | None = None,
    lon: float,
    lat: float,
    params: RenderParams,
) -> dict[str, Any]:
    """The raster's values at (lon, lat); `null` where masked; 404 outside its bounds."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadInput("Coordinates out of range: lon -180..180, lat -90..90")
    fn = partial(_point_sync, lon=lon, lat=lat, params=params)
    return await _read(url, settings, own_storage, fn)


def _tilejson_sync(
    reader: Reader, *, tms: morecantile.TileMatrixSet, params: RenderParams | None
) -> dict[str, Any]:
    if params is not None:
        check_bands(params, band_count(reader))
    west, south, east, north = reader.get_geographic_bounds(tms.rasterio_geographic_crs)
    return {
        "bounds": [west, south, east, north],
        "minzoom": reader.minzoom,
        "maxzoom": reader.maxzoom,
    }


async def tilejson(
    url: str,
    *,
    settings: Settings,
    own_storage: str | None = None,
    tiles_url: str,
    tms: str = DEFAULT_TMS,
    name: str = "",
    params: RenderParams | None = None,
) -> dict[str, Any]:
    """TileJSON 3.0 for the raster with `tiles_url` (a {z}/{x}/{y} template) as its tiles;
    `params` (those the tiles will use) are checked against the raster's bands."""
    matrix_set = tms_or_raise(tms)
    fn = partial(_tilejson_sync, tms=matrix_set, params=params)
    extent = await _read(url, settings, own_storage, fn, matrix_set)
    west, south, east, north = extent["bounds"]
    return {
        "tilejson": "3.0.0",
        "name": name,
        "tiles": [tiles_url],
        "scheme": "xyz",
        "minzoom": extent["minzoom"],
        "maxzoom": extent["maxzoom"],
        "bounds": extent["bounds"],
        "center": [(west + east) / 2, (south + north) / 2, extent["minzoom"]],
    }
