"""Pages of a vector layer's features as JSON text, built without per-row Python objects:
one SQL statement on PostgreSQL, one shapely batch on SQLite (`/api` and `/api/v1` shapes)."""

from __future__ import annotations

import builtins
import enum
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from sqlalchemy import LargeBinary, Text, cast, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.models import Layer, LayerFeature
from worldbase.apps.samsyn.raster.service import RasterLayer
from worldbase.core.db import fetch_row, fetch_value
from worldbase.core.offload import run_sized
from worldbase.geo.spatial import bbox_filter, postgis_bbox_sql

Box = tuple[float, float, float, float]  # minLon, minLat, maxLon, maxLat


@dataclass
class FeaturePage:
    body: str  # the page's features, comma-separated JSON text
    total: int  # matched in all (0 when not counted)
    returned: int


class Shape(enum.Enum):
    """How `list` writes each feature: a GeoJSON Feature (`/api`), or SamSyn's row
    (`/api/v1`: ids, layer, geometry, properties, type, order, UTC timestamps)."""

    geojson = "geojson"
    row = "row"


# One statement on PostgreSQL: the page's features as one JSON text built by the server (no
# per-row work in Python) and the number matched, counted by a window over the rows the sort
# reads anyway (a bbox page sorts every match; no second scan for `count(*)`).
_FEATURE_TEXT = (
    """'{"type":"Feature","id":"' || id::text || '","geometry":' || ST_AsGeoJSON(geometry, 9)"""
    """ || ',"properties":' || coalesce(properties::text, '{}')"""
    """ || ',"display_order":' || display_order::text || '}'"""
)


def _utc_sql(column: str) -> str:
    """`column` as pydantic writes a UTC datetime: ISO, microseconds only when non-zero, Z."""
    text = f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"""
    return f"""'"' || replace({text}, '.000000', '') || 'Z"'"""


_ROW_TEXT = (
    """'{"id":"' || id::text || '","layer_id":"' || layer_id::text || '","geometry":'"""
    """ || ST_AsGeoJSON(geometry, 9) || ',"properties":' || coalesce(properties::text, '{}')"""
    """ || ',"feature_type":' || coalesce(to_json(feature_type)::text, 'null')"""
    """ || ',"display_order":' || display_order::text"""
    f""" || ',"created_at":' || {_utc_sql("created_at")}"""
    f""" || ',"updated_at":' || {_utc_sql("updated_at")} || '}}'"""
)
_PAGE_SQL = """
SELECT coalesce(string_agg({feature}, ',' ORDER BY display_order, id), ''), max(total),
       count(*)
FROM (SELECT {columns}, count(*) OVER () AS total
      FROM layer_features WHERE layer_id = $1{where}
      ORDER BY display_order, id LIMIT $2 OFFSET $3) t
"""
_COLUMNS = {
    Shape.geojson: "id, geometry, properties, display_order",
    Shape.row: "id, layer_id, geometry, properties, feature_type, display_order, created_at,"
    " updated_at",
}
_TEXT = {Shape.geojson: _FEATURE_TEXT, Shape.row: _ROW_TEXT}


def _bbox_sql(first: int) -> str:
    """`geo.spatial.bbox_filter`'s test; the box is the parameters from `$first` on."""
    return " AND " + postgis_bbox_sql("geometry", *(f"${first + i}" for i in range(4)))


def _page_sql(shape: Shape, *, bbox: bool) -> str:
    sql = _PAGE_SQL
    if not bbox:
        # Without a bbox the page walks the (layer_id, display_order) index and stops at
        # the limit; the count is a separate index-only scan.
        sql = sql.replace("count(*) OVER ()", "NULL::bigint")
    where = _bbox_sql(4) if bbox else ""
    return sql.format(feature=_TEXT[shape], columns=_COLUMNS[shape], where=where)


_PAGE = {(shape, bbox): _page_sql(shape, bbox=bbox) for shape in Shape for bbox in (False, True)}
_COUNT = "SELECT count(*) FROM layer_features WHERE layer_id = $1"
_COUNT_BBOX = _COUNT + _bbox_sql(2)


async def list(
    session: AsyncSession,
    *,
    layer: Layer | RasterLayer,
    bbox: Box | None,
    limit: int,
    offset: int,
    shape: Shape = Shape.geojson,
    counted: bool = True,
) -> FeaturePage:
    """One page of features, ordered by (display_order, id), written as `shape` says, and
    how many match in all (unless not `counted`: then `total` is 0)."""
    if session.get_bind().dialect.name == "postgresql":
        return await _list_postgres(session, layer.id, bbox, limit, offset, shape, counted)
    table = LayerFeature.__table__
    filters = [table.c.layer_id == layer.id]
    if bbox is not None:
        filters.append(bbox_filter(table.c.geometry, *bbox))
    count = select(func.count()).select_from(table).where(*filters) if counted else None
    return await _list_sqlite(session, table, filters, count, limit, offset, shape)


async def _list_postgres(
    session: AsyncSession,
    layer_id: uuid.UUID,
    bbox: Box | None,
    limit: int,
    offset: int,
    shape: Shape,
    counted: bool,
) -> FeaturePage:
    box = () if bbox is None else bbox
    row = await fetch_row(session, _PAGE[shape, bbox is not None], layer_id, limit, offset, *box)
    assert row is not None  # an aggregate: always one row
    body, total, returned = row
    if total is None and counted:  # no bbox, or a page past the end: count apart
        total = await fetch_value(session, _COUNT if bbox is None else _COUNT_BBOX, layer_id, *box)
    return FeaturePage(body, int(total or 0), int(returned))


async def _list_sqlite(
    session: AsyncSession,
    table: Any,
    filters: builtins.list[Any],
    count: Any,
    limit: int,
    offset: int,
    shape: Shape,
) -> FeaturePage:
    total = await session.scalar(count) if count is not None else 0
    columns = [
        table.c.id,
        type_coerce(table.c.geometry, LargeBinary()),
        cast(table.c.properties, Text),
        table.c.display_order,
    ]
    if shape == Shape.row:
        columns += [table.c.layer_id, table.c.feature_type, table.c.created_at, table.c.updated_at]
    rows = (
        await session.execute(
            select(*columns)
            .where(*filters)
            .order_by(table.c.display_order, table.c.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    if not rows:
        return FeaturePage("", int(total or 0), 0)
    plain = [(row[0], bytes(row[1]), *row[2:]) for row in rows]
    size = sum(len(row[1]) for row in plain)
    body = await run_sized(size, _page_text, plain, shape)  # large geometries: off the loop
    return FeaturePage(body, int(total or 0), len(rows))


def _utc(value: datetime) -> str:
    """As pydantic writes a `UTCDateTime` (SQLite's naive values were stored as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def _page_text(rows: Sequence[Any], shape: Shape = Shape.geojson) -> str:
    # The raw WKB, parsed and written as GeoJSON by shapely for the whole page at once.
    wkbs = np.array([bytes(row[1]) for row in rows], dtype=object)
    geojson = shapely.to_geojson(shapely.from_wkb(wkbs)).tolist()
    if shape == Shape.row:
        return ",".join(
            f'{{"id":"{row[0]}","layer_id":"{row[4]}","geometry":{geometry},'
            f'"properties":{row[2] or "{}"},"feature_type":{json.dumps(row[5])},'
            f'"display_order":{int(row[3])},"created_at":"{_utc(row[6])}",'
            f'"updated_at":"{_utc(row[7])}"}}'
            for row, geometry in zip(rows, geojson, strict=True)
        )
    return ",".join(
        f'{{"type":"Feature","id":"{row[0]}","geometry":{geometry},'
        f'"properties":{row[2] or "{}"},"display_order":{int(row[3])}}}'
        for row, geometry in zip(rows, geojson, strict=True)
    )
