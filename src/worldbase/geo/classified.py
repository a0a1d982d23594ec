"""Classified rasters: pixel values are class codes (land cover, IUCN habitats, ...).

- `render_tile`: a Web Mercator tile showing only the pixels of the given class values,
  each in its colour, transparent elsewhere; vector shapes (`VectorLayer`) can be painted
  on top in their colours (`rasterize`). Encoded as a palette PNG or lossless WebP: a
  classified tile has few colours, so one byte per pixel is enough and deflates fast.
- `classes_near`: the distinct class values within a geodesic radius of a point, read from
  the raster window around it (any CRS, any latitude, across the antimeridian), never the
  whole raster.
(Synthetic classified COGs for seeds, tests and benchmarks: `geo.synthetic`.)

Sources go through `geo.raster_sources` (allow-list, storage://, s3, http) and are read
with the COG engine's pooled open readers and render thread pool (`geo.raster`), so a
request costs no open or header read and never blocks the event loop.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np
import rasterio
import shapely
from PIL import Image
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.features import rasterize as rio_rasterize
from rasterio.io import DatasetReader
from rasterio.transform import from_bounds
from rasterio.windows import Window
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry

from worldbase.core.errors import BadInput
from worldbase.geo import raster_sources
from worldbase.geo.geodesic import geodesic_region
from worldbase.geo.raster_readers import run_in_pool, with_reader
from worldbase.geo.tiles import tile_bounds_lonlat, tile_bounds_mercator, validate_tile
from worldbase.settings import Settings

__all__ = [
    "RGBA",
    "VectorLayer",
    "classes_near",
    "classes_near_in",
    "encode_rgba",
    "rasterize",
    "render_classes",
    "render_tile",
    "transparent_image",
    "transparent_tile",
]

RGBA = tuple[int, int, int, int]
FORMATS = ("png", "webp")
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp"}
# Largest window `classes_near` reads at full resolution; bigger ones read a decimated
# window (GDAL picks the overview), so a fine raster near a pole cannot exhaust memory.
MAX_WINDOW_PIXELS = 4_000_000
MERCATOR_LAT = 85.0511287798066


@dataclass(frozen=True)
class VectorLayer:
    """A lon/lat geometry painted into tiles in one colour."""

    geometry: BaseGeometry
    color: RGBA


# --- Colours and encoding --------------------------------------------------------------------


@lru_cache(maxsize=64)
def _palette(colors: tuple[tuple[int, RGBA], ...]) -> tuple[np.ndarray, list[RGBA]]:
    """A value -> palette index table (0 is transparent) and the palette's colours."""
    lut = np.zeros(65536, dtype=np.uint16)
    palette: list[RGBA] = [(0, 0, 0, 0)]
    index_of: dict[RGBA, int] = {}
    for value, color in colors:
        if not 0 <= value < 65536:
            continue
        index = index_of.get(color)
        if index is None:
            index = index_of[color] = len(palette)
            palette.append(color)
        lut[value] = index
    lut.setflags(write=False)
    return lut, palette


def _color_key(colors: Mapping[int, RGBA]) -> tuple[tuple[int, RGBA], ...]:
    return tuple(sorted((int(v), tuple(int(c) for c in rgba)) for v, rgba in colors.items()))  # type: ignore[misc]


def encode_indexed(indices: np.ndarray, palette: Sequence[RGBA], fmt: str) -> bytes:
    """A palette image (index 0 transparent) as PNG or lossless WebP."""
    if fmt == "webp":
        lut = np.asarray(palette, dtype=np.uint8)
        return encode_rgba(lut[indices], fmt)
    image = Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), mode="P")
    flat = [c for rgba in palette for c in rgba[:3]]
    image.putpalette(flat, rawmode="RGB")
    alpha = bytes(rgba[3] for rgba in palette)
    out = io.BytesIO()
    image.save(out, format="PNG", transparency=alpha, compress_level=1)
    return out.getvalue()


def encode_rgba(rgba: np.ndarray, fmt: str) -> bytes:
    """An (h, w, 4) uint8 image as PNG or lossless WebP."""
    image = Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), mode="RGBA")
    out = io.BytesIO()
    if fmt == "webp":
        image.save(out, format="WEBP", lossless=True, quality=50, method=0, exact=False)
    else:
        image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


@lru_cache(maxsize=8)
def transparent_image(width: int, height: int, fmt: str = "png") -> bytes:
    """A fully transparent image: what an image client is answered where there is nothing
    to draw (it cannot decode a 204 or a JSON body)."""
    return encode_indexed(np.zeros((height, width), np.uint8), [(0, 0, 0, 0)], fmt)


def transparent_tile(fmt: str = "png", tilesize: int = 256) -> bytes:
    """A fully transparent tile (what an empty tile is)."""
    return transparent_image(tilesize, tilesize, fmt)


# --- Rendering -------------------------------------------------------------------------------


def _read_classes(
    reader: Reader, z: int, x: int, y: int, tilesize: int
) -> np.ma.MaskedArray | None:
    if not reader.tile_exists(x, y, z):
        return None
    with warnings.catch_warnings(action="ignore"):
        try:
            image = reader.tile(x, y, z, tilesize=tilesize, indexes=1, resampling_method="nearest")
        except TileOutsideBounds:
            return None
    return image.array[0]


_MERCATOR = Transformer.from_crs(4326, 3857, always_xy=True)


def rasterize(
    layers: Sequence[VectorLayer], z: int, x: int, y: int, *, tilesize: int = 256
) -> tuple[np.ndarray, list[RGBA]] | None:
    """(palette indices, palette) of vector layers painted in order into tile z/x/y, or None
    when none of them touches the tile."""
    west, south, east, north = tile_bounds_lonlat(z, x, y)
    pad_x, pad_y = (east - west) / tilesize, (north - south) / tilesize
    window = box(west - pad_x, south - pad_y, east + pad_x, north + pad_y)
    shapes: list[tuple[BaseGeometry, int]] = []
    palette: list[RGBA] = [(0, 0, 0, 0)]
    for layer in layers:
        part = layer.geometry.intersection(window) if layer.geometry.intersects(window) else None
        if part is None or part.is_empty:
            continue
        part = shapely.clip_by_rect(part, -180.0, -MERCATOR_LAT, 180.0, MERCATOR_LAT)
        projected = shapely.transform(
            part, lambda xy: np.column_stack(_MERCATOR.transform(xy[:, 0], xy[:, 1]))
        )
        if layer.color not in palette:
            if len(palette) == 256:
                break
            palette.append(layer.color)
        shapes.append((projected, palette.index(layer.color)))
    if not shapes:
        return None
    transform = from_bounds(*tile_bounds_mercator(z, x, y), tilesize, tilesize)
    indices = rio_rasterize(
        shapes, out_shape=(tilesize, tilesize), transform=transform, fill=0, dtype="uint8"
    )
    return indices, palette


def render_classes(
    reader: Reader | None,
    z: int,
    x: int,
    y: int,
    colors: Mapping[int, RGBA],
    *,
    vectors: Sequence[VectorLayer] = (),
    tilesize: int = 256,
    fmt: str = "png",
) -> bytes:
    """Tile z/x/y: the raster's pixels whose value is in `colors` painted in that colour,
    transparent elsewhere (and outside the raster), then `vectors` painted on top (blocking)."""
    lut, palette = _palette(_color_key(colors))
    indices: np.ndarray | None = None
    if reader is not None and colors:
        data = _read_classes(reader, z, x, y, tilesize)
        if data is not None:
            values = np.ma.getdata(data)
            if values.dtype.kind == "f":
                values = np.nan_to_num(values, nan=0.0)
            values = np.clip(values, 0, 65535).astype(np.uint16, copy=False)
            indices = lut[values]
            mask = np.ma.getmaskarray(data)
            if mask.any():
                indices[mask] = 0
    if vectors:
        painted = rasterize(vectors, z, x, y, tilesize=tilesize)
        if painted is not None:
            vector_indices, vector_palette = painted
            palette = list(palette)
            mapping = np.zeros(len(vector_palette), dtype=np.uint16)
            for i, color in enumerate(vector_palette[1:], start=1):
                if color not in palette:
                    palette.append(color)
                mapping[i] = palette.index(color)
            on_top = mapping[vector_indices]
            indices = on_top if indices is None else np.where(on_top > 0, on_top, indices)
    if indices is None or not indices.any():
        return transparent_tile(fmt, tilesize)
    if len(palette) > 256:  # more colours than a palette image holds
        return encode_rgba(np.asarray(palette, dtype=np.uint8)[indices], fmt)
    return encode_indexed(indices.astype(np.uint8), palette, fmt)


# --- Classes near a point --------------------------------------------------------------------


@lru_cache(maxsize=32)
def _to_crs(crs_wkt: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs_wkt, always_xy=True)


def _parts(geom: BaseGeometry) -> Iterator[BaseGeometry]:
    yield from getattr(geom, "geoms", [geom])


@dataclass(frozen=True)
class _Grid:
    """What a window read needs of a dataset, read once (CRS and transform objects are
    slow to build: building them per request cost more than the read itself)."""

    width: int
    height: int
    # North-up affine coefficients: x = c + a * col, y = f + e * row.
    a: float
    c: float
    e: float
    f: float
    rotated: bool
    to_crs: Transformer | None  # None for lon/lat rasters
    nodata: float | None


@lru_cache(maxsize=16)
def _grid(dataset: DatasetReader) -> _Grid:
    t = dataset.transform
    crs = dataset.crs
    lonlat = crs is None or (crs.is_geographic and crs.to_epsg() == 4326)
    return _Grid(
        width=int(dataset.width),
        height=int(dataset.height),
        a=float(t.a),
        c=float(t.c),
        e=float(t.e),
        f=float(t.f),
        rotated=bool(t.b or t.d),
        to_crs=None if lonlat else _to_crs(crs.to_wkt()),
        nodata=dataset.nodata,
    )


def classes_near_in(
    dataset: DatasetReader, lon: float, lat: float, metres: float, *, ignore: Sequence[int] = ()
) -> list[int]:
    """Distinct class values (sorted) of the pixels touching the geodesic circle of radius
    `metres` around (lon, lat); nodata pixels never count (blocking)."""
    grid = _grid(dataset)
    if grid.rotated:
        raise BadInput("Rotated rasters are not supported for look-ups")
    region = geodesic_region(Point(lon, lat), metres)
    to_crs = grid.to_crs
    if to_crs is not None:
        region = shapely.transform(
            region, lambda xy: np.column_stack(to_crs.transform(xy[:, 0], xy[:, 1]))
        )
    found: set[int] = set()
    for part in _parts(region):
        found.update(_window_classes(dataset, grid, part))
    if grid.nodata is not None and math.isfinite(grid.nodata):
        found.discard(int(grid.nodata))
    for value in ignore:
        found.discard(int(value))
    return sorted(found)


# Up to this many pixels, "which pixels touch the region" is answered by shapely on the
# pixel boxes (prepared, vectorized: ~20 us for a 1 km circle); GDAL's rasterizer costs
# milliseconds per call in converting the region, and wins only on big windows.
MAX_BOX_TEST_PIXELS = 4096


def _touching(
    shape: BaseGeometry, out_shape: tuple[int, int], origin: tuple[float, float, float, float]
) -> np.ndarray:
    """Pixels of the window that touch `shape` (like GDAL's `all_touched`); `origin` is
    (x0, pixel width, y0, pixel height) of the window."""
    rows, cols = out_shape
    x0, a, y0, e = origin
    if rows * cols > MAX_BOX_TEST_PIXELS:
        transform = rasterio.Affine(a, 0.0, x0, 0.0, e, y0)
        return ~geometry_mask([shape], out_shape=out_shape, transform=transform, all_touched=True)
    col_edges = x0 + a * np.arange(cols + 1)
    row_edges = y0 + e * np.arange(rows + 1)
    left, top = np.meshgrid(col_edges[:-1], row_edges[:-1])
    right, bottom = np.meshgrid(col_edges[1:], row_edges[1:])
    boxes = shapely.box(
        np.minimum(left, right),
        np.minimum(top, bottom),
        np.maximum(left, right),
        np.maximum(top, bottom),
    )
    shapely.prepare(shape)
    return np.asarray(shapely.intersects(shape, boxes), dtype=bool)


def _window_classes(dataset: DatasetReader, grid: _Grid, shape: BaseGeometry) -> set[int]:
    if shape.is_empty or not np.all(np.isfinite(shape.bounds)):
        return set()
    minx, miny, maxx, maxy = shape.bounds
    cols = sorted(((minx - grid.c) / grid.a, (maxx - grid.c) / grid.a))
    rows = sorted(((miny - grid.f) / grid.e, (maxy - grid.f) / grid.e))
    col0, col1 = max(0, math.floor(cols[0])), min(grid.width, math.ceil(cols[1]))
    row0, row1 = max(0, math.floor(rows[0])), min(grid.height, math.ceil(rows[1]))
    width, height = col1 - col0, row1 - row0
    if height <= 0 or width <= 0:
        return set()
    window = Window(col0, row0, width, height)
    scale = max(1.0, math.sqrt(height * width / MAX_WINDOW_PIXELS))
    out_shape = (max(1, int(height / scale)), max(1, int(width / scale)))
    data = dataset.read(1, window=window, out_shape=out_shape, resampling=Resampling.nearest)
    valid = dataset.read_masks(
        1, window=window, out_shape=out_shape, resampling=Resampling.nearest
    ).astype(bool)
    origin = (
        grid.c + grid.a * col0,
        grid.a * width / out_shape[1],
        grid.f + grid.e * row0,
        grid.e * height / out_shape[0],
    )
    inside = _touching(shape, out_shape, origin)
    selected = data[inside & valid]
    if selected.dtype.kind == "f":
        selected = selected[np.isfinite(selected)]
    return {int(v) for v in np.unique(selected)}


# --- Async API over the COG engine ----------------------------------------------------------


async def render_tile(
    url: str | None,
    *,
    settings: Settings,
    z: int,
    x: int,
    y: int,
    colors: Mapping[int, RGBA],
    vectors: Sequence[VectorLayer] = (),
    tilesize: int = 256,
    fmt: str = "png",
    own_storage: str | None = None,
) -> bytes:
    """`render_classes` for the raster at `url` (checked by the source policy; None: vectors
    only); `own_storage` as in `raster_sources.check_source_allowed`."""
    if fmt not in FORMATS:
        raise BadInput(f"Unknown tile format {fmt!r}: png or webp")
    validate_tile(z, x, y)
    paint = partial(
        render_classes, z=z, x=x, y=y, colors=colors, vectors=vectors, tilesize=tilesize, fmt=fmt
    )
    if url is None or not colors:
        return await run_in_pool(lambda: paint(None))
    source = raster_sources.resolve_source(url, settings, own_storage=own_storage)
    return await run_in_pool(lambda: with_reader(source, settings, paint))


async def classes_near(
    url: str,
    *,
    settings: Settings,
    lon: float,
    lat: float,
    metres: float,
    own_storage: str | None = None,
) -> list[int]:
    """`classes_near_in` for the raster at `url` (allow-listed)."""
    source = raster_sources.resolve_source(url, settings, own_storage=own_storage)

    def near(reader: Reader) -> list[int]:
        assert reader.dataset is not None
        return classes_near_in(reader.dataset, lon, lat, metres)

    return await run_in_pool(lambda: with_reader(source, settings, near))
