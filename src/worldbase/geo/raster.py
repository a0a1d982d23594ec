"""The COG engine: tiles, info, statistics, previews, point values and TileJSON of a raster.

Built on rio-tiler (reads, warps, masks) with Worldbase's own pieces around it:

- sources are checked by the source policy and resolved in `geo.raster_sources`
  (http(s) through the policy relay, s3://, storage://, local raster folders), opened
  read-only with the GeoTIFF driver only (`SafeReader`), with the GDAL settings from there;
- opened datasets are kept in a small pool (`READERS`), an LRU keyed by the resolved
  source, holding a few idle readers per source: a tile costs no open/header read, and a
  GDAL dataset is never used by two threads at once (handles are not thread-safe);
- rendering runs in a dedicated thread pool (GDAL, numpy and zlib release the GIL), never
  on the event loop;
- PNG is encoded by `geo.raster_encode.encode_png` (the "Up" filter and zlib level 1)
  rather than GDAL's PNG driver at zlevel 6: the same format, several times faster.

Tiles outside the raster's bounds are empty (`content == b""`): routes answer `204`, as
`geo.tile_cache.serve` does for every empty tile.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import attr
import morecantile
import numpy
from rasterio.errors import RasterioError, RasterioIOError
from rio_tiler.constants import WEB_MERCATOR_TMS, WGS84_CRS
from rio_tiler.errors import (
    InvalidBandName,
    InvalidColorFormat,
    InvalidColorMapName,
    InvalidExpression,
    InvalidFormat,
    MissingBands,
    PointOutsideBounds,
    RioTilerError,
    TileOutsideBounds,
)
from rio_tiler.io import Reader

from worldbase.core.errors import BadInput, DomainError, NotFound, UpstreamError, UpstreamTimeout
from worldbase.geo.raster_encode import FORMATS, encode, encode_png, media_type
from worldbase.geo.raster_params import (
    RenderParams,
    RenderQuery,
    RenderQueryDep,
    parse_render_params,
)
from worldbase.geo.raster_relay import last_error
from worldbase.geo.raster_sources import (
    STORAGE_SCHEME,
    SourceNotAllowed,
    check_source_allowed,
    gdal_env,
    gdal_options,
    gdal_path,
    open_dataset,
    resolve_source,
)
from worldbase.settings import Settings

__all__ = [
    "FORMATS",
    "READERS",
    "RenderParams",
    "RenderQuery",
    "RenderQueryDep",
    "Rendered",
    "SourceNotAllowed",
    "check_source_allowed",
    "encode",
    "encode_png",
    "gdal_env",
    "gdal_options",
    "info",
    "media_type",
    "parse_render_params",
    "point",
    "preview",
    "resolve_source",
    "statistics",
    "tile",
    "tilejson",
    "tms_or_raise",
]

T = TypeVar("T")

DEFAULT_TMS = "WebMercatorQuad"
RENDER_THREADS = 8
MAX_PREVIEW = 2048
MAX_STATS_SIZE = 2048

_EXECUTOR = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="raster")


@dataclass(frozen=True)
class Rendered:
    content: bytes  # b"" for an empty tile (outside the raster)
    media_type: str


# --- Readers -----------------------------------------------------------------------------------


@attr.s
class SafeReader(Reader):
    """rio-tiler's Reader over `open_dataset`: read-only, GeoTIFF driver only."""

    def __attrs_post_init__(self) -> None:
        if not self.dataset:
            assert self.input is not None
            self.dataset = self._ctx_stack.enter_context(open_dataset(self.input))
        super().__attrs_post_init__()


class ReaderPool:
    """Open rio-tiler readers by resolved source: an LRU of sources, a few idle readers each.

    `reader()` lends one reader to one thread; it goes back to the pool afterwards, or is
    closed when its source was evicted meanwhile or the read failed.
    """

    def __init__(self, max_sources: int = 32, max_idle: int = RENDER_THREADS):
        self.max_sources = max_sources
        self.max_idle = max_idle
        self._lock = threading.Lock()
        # Keyed by (source, TileMatrixSet id): a reader is bound to its TMS.
        self._idle: OrderedDict[tuple[str, str], list[Reader]] = OrderedDict()

    def _take(self, key: tuple[str, str]) -> Reader | None:
        with self._lock:
            idle = self._idle.get(key)
            if idle is None:
                return None
            self._idle.move_to_end(key)
            return idle.pop() if idle else None

    def _give_back(self, key: tuple[str, str], reader: Reader) -> None:
        evicted: list[Reader] = []
        with self._lock:
            idle = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            if len(idle) < self.max_idle:
                idle.append(reader)
            else:
                evicted.append(reader)
            while len(self._idle) > self.max_sources:
                _, old = self._idle.popitem(last=False)
                evicted.extend(old)
        for item in evicted:
            _close(item)

    def _open(self, source: str, settings: Settings, tms: morecantile.TileMatrixSet) -> Reader:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = SafeReader(gdal_path(source, settings), tms=tms)
        try:
            require_crs(reader, source)
        except Exception:
            _close(reader)
            raise
        return reader

    @contextlib.contextmanager
    def reader(
        self, source: str, settings: Settings, tms: morecantile.TileMatrixSet | None = None
    ) -> Iterator[Reader]:
        tms = tms or WEB_MERCATOR_TMS
        key = (source, str(tms.id))
        reader = self._take(key) or self._open(source, settings, tms)
        ok = False
        try:
            yield reader
            ok = True
        finally:
            if ok:
                self._give_back(key, reader)
            else:
                _close(reader)

    def forget(self, source: str) -> None:
        with self._lock:
            keys = [key for key in self._idle if key[0] == source]
            idle = [r for key in keys for r in self._idle.pop(key)]
        for item in idle:
            _close(item)

    def clear(self) -> None:
        with self._lock:
            idle = [r for readers in self._idle.values() for r in readers]
            self._idle.clear()
        for item in idle:
            _close(item)


def _close(reader: Reader) -> None:
    with contextlib.suppress(Exception):
        reader.close()


READERS = ReaderPool()


# --- Errors ----------------------------------------------------------------------------------


def open_error(source: str, exc: Exception) -> DomainError:
    relayed = last_error(source)
    if relayed is not None:
        return relayed  # the policy's refusal or the upstream's own failure
    text = str(exc)
    remote = source.startswith(("http://", "https://", "s3://", "/vsis3/"))
    if "timed out" in text.lower() or "timeout" in text.lower():
        return UpstreamTimeout(
            "The raster source did not answer in time", detail={"source": source}
        )
    if remote:
        return UpstreamError(
            "The raster source could not be read", detail={"source": source, "reason": text[:200]}
        )
    if "No such file" in text or "does not exist" in text:
        return NotFound("Raster source not found", detail={"source": source})
    return BadInput("The source is not a readable raster", detail={"source": source})


def require_crs(reader: Reader, source: str) -> None:
    """A raster without a CRS cannot be placed on a map (rio-tiler fails on it with an
    AttributeError, a 500): 422 instead. The reader is closed."""
    if reader.crs is None:
        _close(reader)
        raise BadInput(
            "The raster has no CRS (coordinate reference system), so it cannot be placed on a map",
            detail={"source": source},
        )


def check_bands(params: RenderParams, count: int) -> None:
    for index in params.band_indexes():
        if index > count:
            name = "expression" if params.expression else "bidx"
            raise BadInput(
                f"Band {index} does not exist: the raster has {count} band(s)",
                detail=[
                    {
                        "loc": ["query", name],
                        "msg": f"band {index} > {count}",
                        "type": "value_error",
                    }
                ],
            )


def _count(reader: Reader) -> int:
    dataset = reader.dataset
    assert dataset is not None
    return int(dataset.count)


def with_reader(
    source: str,
    settings: Settings,
    fn: Callable[[Reader], T],
    tms: morecantile.TileMatrixSet | None = None,
) -> T:
    """Run `fn` with a pooled reader for `source` (already allow-listed and resolved)."""
    try:
        with gdal_env(settings), READERS.reader(source, settings, tms) as reader:
            return fn(reader)
    except (InvalidBandName, InvalidExpression, MissingBands) as exc:
        raise BadInput(f"Invalid bands or expression: {exc}") from None
    except (InvalidColorMapName, InvalidColorFormat) as exc:
        raise BadInput(f"Invalid colormap: {exc}") from None
    except InvalidFormat as exc:
        raise BadInput(f"Cannot encode these pixels in this format: {exc}") from None
    except PointOutsideBounds:
        raise NotFound("The point is outside the raster's bounds") from None
    except (RasterioIOError, RasterioError) as exc:
        raise open_error(source, exc) from None
    except (RioTilerError, IndexError) as exc:
        raise BadInput(f"Invalid render parameters: {exc}") from None


async def run_in_pool(fn: Callable[[], T]) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_EXECUTOR, fn)


def source_path(url: str, settings: Settings, *, own_storage: str | None = None) -> str:
    """The checked, resolved path of `url` (the URL itself for http(s))."""
    return resolve_source(url, settings, own_storage=own_storage)


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
    check_bands(params, _count(reader))
    if not reader.tile_exists(x, y, z):
        return b""
    size = (params.tilesize or tms.matrix(z).tileWidth) * scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
    source = resolve_source(url, settings, own_storage=own_storage)
    fn = partial(_tile_sync, tms=matrix_set, z=z, x=x, y=y, params=params, fmt=fmt, scale=scale)
    content = await run_in_pool(lambda: with_reader(source, settings, fn, matrix_set))
    return Rendered(content, kind)


def _info_sync(reader: Reader) -> dict[str, Any]:
    data: dict[str, Any] = reader.info().model_dump(mode="json", exclude_none=True)
    try:
        west, south, east, north = reader.get_geographic_bounds(WGS84_CRS)
        data["geographic_bounds"] = [west, south, east, north]
    except RioTilerError:
        data["geographic_bounds"] = None
    data["count"] = _count(reader)
    data["minzoom"], data["maxzoom"] = reader.minzoom, reader.maxzoom
    return data


async def info(url: str, *, settings: Settings, own_storage: str | None = None) -> dict[str, Any]:
    """rio-tiler's Info (bounds, CRS, dtype, bands, overviews...) plus WGS84 bounds and zooms."""
    source = resolve_source(url, settings, own_storage=own_storage)
    return await run_in_pool(lambda: with_reader(source, settings, _info_sync))


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
    check_bands(params, _count(reader))
    hist_options: dict[str, Any] = {}
    if bins is not None:
        hist_options["bins"] = bins
    if hist_range is not None:
        hist_options["range"] = hist_range
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
    source = resolve_source(url, settings, own_storage=own_storage)
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
    return await run_in_pool(lambda: with_reader(source, settings, fn))


def _preview_sync(reader: Reader, *, params: RenderParams, fmt: str, max_size: int) -> bytes:
    check_bands(params, _count(reader))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
    source = resolve_source(url, settings, own_storage=own_storage)
    fn = partial(_preview_sync, params=params, fmt=fmt, max_size=max_size)
    return Rendered(await run_in_pool(lambda: with_reader(source, settings, fn)), kind)


def _point_sync(reader: Reader, *, lon: float, lat: float, params: RenderParams) -> dict[str, Any]:
    check_bands(params, _count(reader))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
    source = resolve_source(url, settings, own_storage=own_storage)
    fn = partial(_point_sync, lon=lon, lat=lat, params=params)
    return await run_in_pool(lambda: with_reader(source, settings, fn))


def _tilejson_sync(
    reader: Reader, *, tms: morecantile.TileMatrixSet, params: RenderParams | None
) -> dict[str, Any]:
    if params is not None:
        check_bands(params, _count(reader))
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
    source = resolve_source(url, settings, own_storage=own_storage)
    extent = await run_in_pool(
        lambda: with_reader(
            source, settings, partial(_tilejson_sync, tms=matrix_set, params=params), matrix_set
        )
    )
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


def is_storage_source(url: str) -> bool:
    return url.startswith(STORAGE_SCHEME)
