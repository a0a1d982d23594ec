"""Mapbox Vector Tiles from a table with a `Geometry` column, the same on PostGIS and SQLite.

PostgreSQL: one statement, `postgis_tile_sql`, as text, so that apps can run the very same
statement through a raw driver connection (prepared once per connection).
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
from sqlalchemy import Dialect, Integer, LargeBinary, Table, select, text
from sqlalchemy import bindparam as _bindparam
from sqlalchemy import type_coerce as _type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from worldbase.geo.spatial import SRID, bbox_filter
from worldbase.geo.tiles import tile_bounds_mercator, validate_tile

__all__ = [
    "BUFFER",
    "EXTENT",
    "MVT_MEDIA_TYPE",
    "postgis_tile_sql",
    "render_mvt",
    "tile_args",
    "tilejson",
]

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
    exact: bool = False,
) -> bytes:
    """One MVT layer for tile z/x/y; `b""` when no feature falls in it.

    `exact` (PostGIS): candidates by ST_Intersects, not boxes (see `postgis_tile_sql`).

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
        dialect = session.get_bind().dialect
        condition = "true" if where is None else _literal_sql(where, dialect)
        sql = postgis_tile_sql(
            dialect.identifier_preparer.format_table(table), geometry_column,
            property_columns, where=condition,
            tile=tile_args(z, x, y, ":z, :x, :y"), limit=":limit", layer_name=layer_name,
            exact=exact, id_column=id_column,
        )  # fmt: skip
        result = await session.execute(text(sql), {"z": z, "x": x, "y": y, "limit": max_features})
        data = result.scalar()
        return bytes(data) if data else b""
    return await _render_sqlite(
        session, table, geometry_column, property_columns, where, z, x, y, layer_name,
        max_features, id_column,
    )  # fmt: skip


# --- PostGIS ---------------------------------------------------------------------------------

# Below this zoom a tile reads thousands of rows: each gets its own plan (see `postgis_tile_sql`).
LOW_ZOOM = 12


def postgis_tile_sql(
    table: str,
    geometry_column: str,
    property_columns: Sequence[str],
    *,
    where: str,
    tile: str,
    limit: str,
    layer_name: str,
    exact: bool,
    id_column: str | None = None,
) -> str:
    """The PostGIS statement of one MVT layer, as text for any driver's parameter style.

    `where` is the caller's row filter, `tile` the ST_TileEnvelope arguments (`tile_args`)
    and `limit` the cap, each SQL text (parameter markers, or validated integers); names are
    the caller's constants. The candidates come from `geom && envelope` (the envelope is
    transformed to lon/lat, not the column, so the GiST index answers), clipped and encoded
    by `ST_AsMVTGeom` (extent 4096, buffer 64) and `ST_AsMVT`.

    Shared statements (the tile as parameters) put the envelopes in a one-row subquery that
    is not flattened (`OFFSET 0`): a generic plan would otherwise compute ST_TileEnvelope
    again for every row (-10% at z12-z14 polygons).

    `exact` (layers with lines or polygons) filters with ST_Intersects instead of the boxes
    alone: a shape whose box reaches the tile but which does not is clipped away anyway, and
    clipping it cost ~20% at z10-z12; for points the exact test is the slower one (2x)."""
    search = f"ST_Transform(ST_TileEnvelope({tile}, margin => {BUFFER / EXTENT!r}), {SRID})"
    clip = f"ST_TileEnvelope({tile})"
    source = table
    if not tile.split(",")[0].strip().isdigit():  # parameters: one plan shared by every tile
        source += f", (SELECT {clip} AS clip, {search} AS search OFFSET 0) AS wb_envelope"
        search, clip = "wb_envelope.search", "wb_envelope.clip"
    geom = geometry_column
    match = f"ST_Intersects({geom}, {search})" if exact else f"{geom} && {search}"
    columns = ", ".join([*property_columns, *([id_column] if id_column else [])])
    mvt_args = f"'{layer_name}', {EXTENT}, '{_GEOM}'" + (f", '{id_column}'" if id_column else "")
    return f"""
SELECT ST_AsMVT(wb_mvt, {mvt_args}) FROM (
  SELECT ST_AsMVTGeom(ST_Transform({geom}, 3857), {clip}, {EXTENT}, {BUFFER}, true)
         AS {_GEOM}, {columns}
  FROM {source}
  WHERE ({where}) AND {match}
  LIMIT {limit}) wb_mvt
"""  # noqa: S608 - the caller's constants and validated integers only


def _literal_sql(where: ColumnElement[bool], dialect: Dialect) -> str:
    """The caller's filter as SQL text with its values inline (rendered by the dialect)."""
    return str(where.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def tile_args(z: int, x: int, y: int, parameters: str) -> str:
    """The tile for `postgis_tile_sql`: below LOW_ZOOM its own integers, else `parameters`.

    Why: a shared prepared statement runs on PostgreSQL's generic plan after five
    executions, which at z8-z10 over dense polygons is about twice as slow as a plan made
    for the tile (a parallel bitmap scan; measured 127 vs 69 ms at z8). Low-zoom tiles are
    few and slow, so each gets its own statement text; high zooms share one, where planning
    would cost as much as the query."""
    validate_tile(z, x, y)
    return f"{int(z)}, {int(x)}, {int(y)}" if z < LOW_ZOOM else parameters


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
    limit = _bindparam("wb_tile_limit", max_features, type_=Integer())
    rows = (await session.execute(statement.limit(limit))).all()
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
