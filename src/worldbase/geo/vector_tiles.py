"""Mapbox Vector Tiles from a table with a `Geometry` column, the same on PostGIS and SQLite.

PostgreSQL: one statement. The candidates come from `geom && ST_Transform(envelope, 4326)`
(the envelope is transformed, not the column, so the GiST index answers), `LIMIT
max_features`, `ST_AsMVTGeom` (extent 4096, buffer 64, clipped) and `ST_AsMVT`.
SQLite: candidates through `bbox_filter` (the R*Tree), then vectorised shapely/numpy:
Web Mercator, tile pixels, clip to the buffered tile, snap to the pixel grid (which drops
geometries that collapse, as `ST_AsMVTGeom` does), encoded with `mapbox-vector-tile`.

Low zooms over dense data: every tile is capped at `max_features` (10,000 by default, as
tipg does); snapping to the 4096 grid already simplifies polygons to the tile's pixel size.
Which features a capped tile keeps is whatever the index scan returns first.

Properties: scalar columns become tag values; a JSON column holding an object is expanded
into its keys (ST_AsMVT does this for jsonb) keeping strings, booleans and numbers (integral
numbers as integers, as PostGIS does); NULLs and nested values are left out.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import anyio
import mapbox_vector_tile
import numpy as np
import shapely
from sqlalchemy import Integer, LargeBinary, String, Table, func, literal_column, select
from sqlalchemy import bindparam as _bindparam
from sqlalchemy import type_coerce as _type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from worldbase.geo.spatial import SRID, bbox_filter
from worldbase.geo.tiles import tile_bounds_mercator, validate_tile

__all__ = ["BUFFER", "EXTENT", "MVT_MEDIA_TYPE", "render_mvt", "tilejson"]

EXTENT = 4096
BUFFER = 64
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
_GEOM = "__wb_geom"  # the geometry's name inside the tile query (never a property)
_MAX_LAT = 85.0511287798066
# Below this many features the Python encoding runs on the event loop (a thread hop costs more).
_INLINE_FEATURES = 200


async def render_mvt(
    session: AsyncSession,
    *,
    table: Table,
    geometry_column: str,
    property_columns: list[str],
    where: ColumnElement[bool] | None,
    z: int,
    x: int,
    y: int,
    layer_name: str,
    max_features: int = 10_000,
    id_column: str | None = None,
) -> bytes:
    """One MVT layer for tile z/x/y; `b""` when no feature falls in it.

    `id_column` (optional) must be an integer column: it becomes the MVT feature id. UUID
    ids can go in `property_columns` (they become strings).
    """
    validate_tile(z, x, y)
    if max_features < 1:
        raise ValueError("max_features must be positive")
    for name in [geometry_column, *property_columns, *([id_column] if id_column else [])]:
        if name not in table.c:
            raise ValueError(f"{table.name} has no column {name!r}")
    if session.get_bind().dialect.name == "postgresql":
        statement = postgis_tile_statement(
            table, geometry_column, property_columns, where, z, x, y, layer_name,
            max_features, id_column,
        )  # fmt: skip
        data = (await session.execute(statement)).scalar()
        return bytes(data) if data else b""
    return await _render_sqlite(
        session, table, geometry_column, property_columns, where, z, x, y, layer_name,
        max_features, id_column,
    )  # fmt: skip


# --- PostGIS ---------------------------------------------------------------------------------


def _int(name: str, value: int) -> Any:
    return _bindparam(name, value, type_=Integer())


def postgis_tile_statement(
    table: Table,
    geometry_column: str,
    property_columns: list[str],
    where: ColumnElement[bool] | None,
    z: int,
    x: int,
    y: int,
    layer_name: str,
    max_features: int,
    id_column: str | None,
) -> Select[Any]:
    """The one PostGIS statement behind `render_mvt` (exposed for EXPLAIN in tests)."""
    tz, tx, ty = _int("wb_tile_z", z), _int("wb_tile_x", x), _int("wb_tile_y", y)
    geom = table.c[geometry_column]
    envelope = func.ST_TileEnvelope(tz, tx, ty)
    # The buffered envelope in lon/lat: a Mercator rectangle maps onto a lon/lat rectangle.
    margin: Any = literal_column(f"margin => {BUFFER / EXTENT!r}")
    search = func.ST_Transform(func.ST_TileEnvelope(tz, tx, ty, margin), SRID)
    mvt_geom = func.ST_AsMVTGeom(func.ST_Transform(geom, 3857), envelope, EXTENT, BUFFER, True)
    columns = [mvt_geom.label(_GEOM)]
    columns += [table.c[name].label(name) for name in property_columns]
    if id_column and id_column not in property_columns:
        columns.append(table.c[id_column].label(id_column))
    inner = select(*columns).select_from(table).where(geom.op("&&")(search))
    if where is not None:
        inner = inner.where(where)
    tile = inner.limit(_int("wb_tile_limit", max_features)).subquery("wb_mvt")
    args: list[Any] = [
        literal_column("wb_mvt"),
        _bindparam("wb_tile_layer", layer_name, type_=String()),
        EXTENT,
        _bindparam("wb_tile_geom", _GEOM, type_=String()),
    ]
    if id_column:
        args.append(_bindparam("wb_tile_id", id_column, type_=String()))
    return select(func.ST_AsMVT(*args)).select_from(tile)


# --- SQLite ----------------------------------------------------------------------------------


async def _render_sqlite(
    session: AsyncSession,
    table: Table,
    geometry_column: str,
    property_columns: list[str],
    where: ColumnElement[bool] | None,
    z: int,
    x: int,
    y: int,
    layer_name: str,
    max_features: int,
    id_column: str | None,
) -> bytes:
    bounds = tile_bounds_mercator(z, x, y)
    span = bounds[2] - bounds[0]
    pad = span * BUFFER / EXTENT
    lon0, lat0 = _mercator_to_lonlat(bounds[0] - pad, bounds[1] - pad)
    lon1, lat1 = _mercator_to_lonlat(bounds[2] + pad, bounds[3] + pad)
    geom = table.c[geometry_column]
    # The raw WKB (no per-row shapely parse by the column type): parsed vectorised below.
    columns: list[Any] = [_type_coerce(geom, LargeBinary()).label(_GEOM)]
    columns += [table.c[name] for name in property_columns]
    if id_column:
        columns.append(table.c[id_column].label("__wb_id"))
    statement = select(*columns).where(bbox_filter(geom, lon0, lat0, lon1, lat1))
    if where is not None:
        statement = statement.where(where)
    rows = (await session.execute(statement.limit(_int("wb_tile_limit", max_features)))).all()
    if not rows:
        return b""
    args = (rows, bounds, property_columns, layer_name, id_column is not None)
    if len(rows) <= _INLINE_FEATURES:
        return _encode(*args)
    return await anyio.to_thread.run_sync(_encode, *args)


def _mercator_to_lonlat(mx: float, my: float) -> tuple[float, float]:
    lon = max(min(math.degrees(mx / 6378137.0), 180.0), -180.0)
    lat = math.degrees(2.0 * math.atan(math.exp(my / 6378137.0)) - math.pi / 2.0)
    return lon, max(min(lat, 90.0), -90.0)


def _encode(
    rows: Sequence[Any],
    bounds: tuple[float, float, float, float],
    property_columns: list[str],
    layer_name: str,
    with_id: bool,
) -> bytes:
    minx, _miny, _maxx, maxy = bounds
    scale = EXTENT / (bounds[2] - bounds[0])

    def to_tile(coords: np.ndarray) -> np.ndarray:
        lon = coords[:, 0]
        lat = np.clip(coords[:, 1], -_MAX_LAT, _MAX_LAT)
        mx = np.radians(lon) * 6378137.0
        my = np.log(np.tan(np.pi / 4.0 + np.radians(lat) / 2.0)) * 6378137.0
        # Pixels with y pointing down, as ST_AsMVTGeom returns them.
        return np.column_stack(((mx - minx) * scale, (maxy - my) * scale))

    wkbs = np.array([bytes(row[0]) if row[0] is not None else None for row in rows], dtype=object)
    geoms = shapely.from_wkb(wkbs)
    geoms = shapely.transform(geoms, to_tile)
    geoms = shapely.clip_by_rect(geoms, -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    # The pixel grid: integer coordinates, valid polygons, collapsed parts dropped.
    geoms = shapely.set_precision(geoms, 1.0)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    features = []
    for row, geometry, kept in zip(rows, geoms, keep, strict=True):
        if not kept:
            continue
        feature: dict[str, Any] = {
            "geometry": geometry,
            "properties": _properties(row, property_columns),
        }
        if with_id and isinstance(row[-1], int) and row[-1] >= 0:
            feature["id"] = row[-1]
        features.append(feature)
    if not features:
        return b""
    data: bytes = mapbox_vector_tile.encode(
        {"name": layer_name, "features": features},
        default_options={"extents": EXTENT, "y_coord_down": True},
    )
    return data


def _value(value: Any) -> str | bool | int | float | None:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            return None
        return int(number) if number.is_integer() and abs(number) < 2**63 else number
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list | tuple | bytes):
        return None
    return str(value)


def _properties(row: Sequence[Any], property_columns: list[str]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for i, name in enumerate(property_columns, start=1):
        value = row[i]
        if isinstance(value, dict):
            for key, item in value.items():
                converted = _value(item)
                if converted is not None:
                    props[str(key)] = converted
            continue
        converted = _value(value)
        if converted is not None:
            props[name] = converted
    return props


# --- TileJSON --------------------------------------------------------------------------------

WORLD_BOUNDS = (-180.0, -_MAX_LAT, 180.0, _MAX_LAT)


def tilejson(
    *,
    name: str,
    tiles_url_template: str,
    bounds: Sequence[float] | None,
    minzoom: int,
    maxzoom: int,
    vector_layers: list[dict[str, Any]],
) -> dict[str, Any]:
    """A TileJSON 3.0.0 document for one vector tile source.

    `vector_layers`: `{"id": ..., "fields": {name: type}, ...}` per layer (fields default to
    `{}`; minzoom/maxzoom default to the source's). `bounds` None means the whole world.
    """
    if not 0 <= minzoom <= maxzoom:
        raise ValueError("tilejson needs 0 <= minzoom <= maxzoom")
    west, south, east, north = WORLD_BOUNDS if bounds is None else tuple(map(float, bounds))
    layers = []
    for layer in vector_layers:
        if "id" not in layer:
            raise ValueError("every vector layer needs an 'id'")
        layers.append(
            {"fields": {}, "minzoom": minzoom, "maxzoom": maxzoom, **layer},
        )
    center_zoom = min(max(minzoom, 2), maxzoom)
    return {
        "tilejson": "3.0.0",
        "name": name,
        "scheme": "xyz",
        "tiles": [tiles_url_template],
        "bounds": [west, south, east, north],
        "center": [(west + east) / 2.0, (south + north) / 2.0, center_zoom],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "vector_layers": layers,
    }
