"""Features of vector layers: GeoJSON out (built as text, no per-row parsing), validated in."""

from __future__ import annotations

import builtins
import enum
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import LargeBinary, Text, cast, func, insert, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.access import maps_containing
from worldbase.apps.samsyn.events import Change
from worldbase.apps.samsyn.layers.service import refresh_stats
from worldbase.apps.samsyn.models import Layer, LayerFeature, SourceType
from worldbase.apps.samsyn.raster.service import RasterLayer
from worldbase.core.db import fetch_row, fetch_value, utcnow
from worldbase.core.errors import BadInput, Conflict, NotFound
from worldbase.core.offload import loads_object, run_sized
from worldbase.geo.geometry import (
    DEFAULT_MAX_FEATURE_VERTICES,
    DEFAULT_MAX_VERTICES,
    parse_feature,
    parse_feature_collection,
    parse_geojson_geometry,
    to_geojson,
)
from worldbase.geo.spatial import bbox_filter, postgis_bbox_sql

MAX_FEATURES_PER_REQUEST = 10_000
Box = tuple[float, float, float, float]


def require_vector(layer: Layer | RasterLayer) -> None:
    if layer.source_type != SourceType.vector:
        raise Conflict(
            f"Layer is a {layer.source_type.value} layer: only vector layers have features"
        )


async def lock_layer(session: AsyncSession, *, layer_id: uuid.UUID) -> Layer:
    """The layer row, locked until commit (PostgreSQL), so concurrent feature writes to one
    layer serialise and its statistics and revision stay exact. SQLite serialises writers."""
    layer = await session.scalar(
        select(Layer)
        .where(Layer.id == layer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if layer is None:
        raise NotFound("Layer not found")
    return layer


# --- Reading ---------------------------------------------------------------------------------


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


# A written feature as plain values (id, geometry, properties, display_order): what the
# response builders take, so they can run in a worker process (geometries pickle as WKB).
WrittenFeature = tuple[str, BaseGeometry, dict[str, Any], int]


def written(feature: LayerFeature) -> WrittenFeature:
    return (str(feature.id), feature.geometry, feature.properties or {}, feature.display_order)


def feature_dict(row: WrittenFeature) -> dict[str, Any]:
    fid, geometry, properties, order = row
    return {
        "type": "Feature",
        "id": fid,
        "geometry": to_geojson(geometry),
        "properties": properties,
        "display_order": order,
    }


def features_json(rows: builtins.list[WrittenFeature]) -> bytes:
    """The written features as the FeatureCollection the write routes answer with."""
    geojson = shapely.to_geojson(np.array([row[1] for row in rows], dtype=object)).tolist()
    features = ",".join(
        f'{{"type":"Feature","id":"{fid}","geometry":{geometry},'
        f'"properties":{json.dumps(props, separators=(",", ":"))},"display_order":{int(order)}}}'
        for (fid, _, props, order), geometry in zip(rows, geojson, strict=True)
    )
    body = f'{{"type":"FeatureCollection","features":[{features}],"numberReturned":{len(rows)}}}'
    return body.encode()


async def get_or_raise(
    session: AsyncSession, *, layer: Layer, feature_id: uuid.UUID
) -> LayerFeature:
    feature = await session.get(LayerFeature, feature_id)
    if feature is None or feature.layer_id != layer.id:
        raise NotFound("Feature not found")
    return feature


# --- Writing ---------------------------------------------------------------------------------


def _display_order(obj: Mapping[str, Any], path: str) -> int | None:
    value = obj.get("display_order")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31 - 1:
        where = f"{path}.display_order" if path else "display_order"
        raise BadInput(
            f"Invalid GeoJSON feature at {where}: display_order must be a non-negative integer",
            detail={"reason": "display_order must be a non-negative integer", "path": where},
        )
    return value


FEATURE_LIMIT = "WORLDBASE_MAX_FEATURE_VERTICES"
REQUEST_LIMIT = "WORLDBASE_MAX_REQUEST_VERTICES"


def parse_input(
    body: Any,
    *,
    max_feature_vertices: int = DEFAULT_MAX_FEATURE_VERTICES,
    max_request_vertices: int = DEFAULT_MAX_VERTICES,
) -> builtins.list[tuple[BaseGeometry, dict[str, Any], int | None]]:
    """(geometry, properties, display_order) of one Feature or each of a FeatureCollection;
    the first invalid feature fails the whole request, its index named in the error, and
    so does a feature past `max_feature_vertices` or a request past `max_request_vertices`
    (the parser stops counting there: an oversized body costs no more than the limit)."""
    if isinstance(body, Mapping) and body.get("type") == "Feature":
        per_feature = min(max_feature_vertices, max_request_vertices)
        name = FEATURE_LIMIT if per_feature == max_feature_vertices else REQUEST_LIMIT
        parsed = parse_feature(body, max_vertices=per_feature, limit_name=name)
        assert parsed.geometry is not None
        return [(parsed.geometry, parsed.properties, _display_order(body, ""))]
    if isinstance(body, Mapping) and body.get("type") == "FeatureCollection":
        items = parse_feature_collection(
            body,
            max_vertices=max_request_vertices,
            max_feature_vertices=max_feature_vertices,
            max_features=MAX_FEATURES_PER_REQUEST,
            limit_names=(REQUEST_LIMIT, FEATURE_LIMIT),
        )
        raw = body["features"]
        result = []
        for i, item in enumerate(items):
            assert item.geometry is not None
            result.append(
                (item.geometry, item.properties, _display_order(raw[i], f"features[{i}]"))
            )
        if not result:
            raise BadInput("The FeatureCollection has no features")
        return result
    raise BadInput("Send a GeoJSON Feature or FeatureCollection", detail={"path": "type"})


def decode_input(
    raw: bytes, *, max_feature_vertices: int, max_request_vertices: int
) -> builtins.list[tuple[BaseGeometry, dict[str, Any], int | None]]:
    """`parse_input` of a raw JSON body (one call, so it can run in a worker process)."""
    return parse_input(
        loads_object(raw),
        max_feature_vertices=max_feature_vertices,
        max_request_vertices=max_request_vertices,
    )


def summarize(geoms: builtins.list[BaseGeometry]) -> tuple[int, Box | None, set[str]]:
    if not geoms:
        return 0, None, set()
    bounds = shapely.bounds(geoms)
    box = (
        float(bounds[:, 0].min()),
        float(bounds[:, 1].min()),
        float(bounds[:, 2].max()),
        float(bounds[:, 3].max()),
    )
    return len(geoms), box, {g.geom_type for g in geoms}


async def create_many(
    session: AsyncSession,
    *,
    layer_id: uuid.UUID,
    items: builtins.list[tuple[BaseGeometry, dict[str, Any], int | None]],
    feature_type: str | None = None,
) -> tuple[builtins.list[LayerFeature], Change]:
    """Inserts every feature or none (one transaction), each of `feature_type` (SamSyn's
    optional category); returns the rows and the change."""
    layer = await lock_layer(session, layer_id=layer_id)
    require_vector(layer)
    next_order = await session.scalar(
        select(func.coalesce(func.max(LayerFeature.display_order) + 1, 0)).where(
            LayerFeature.layer_id == layer.id
        )
    )
    order = int(next_order or 0)
    now = utcnow()
    features = []
    for geometry, properties, display_order in items:
        if display_order is None:
            display_order, order = order, order + 1
        features.append(
            LayerFeature(
                id=uuid.uuid4(),
                layer_id=layer.id,
                geometry=geometry,
                properties=properties,
                display_order=display_order,
                feature_type=feature_type,
                created_at=now,
                updated_at=now,
            )
        )
    await insert_rows(session, features)
    await refresh_stats(session, layer=layer, added=summarize([f.geometry for f in features]))
    await session.commit()
    ids = [str(f.id) for f in features[:1000]]
    data = {"layer_id": str(layer.id), "ids": ids, "count": len(features)}
    return features, await _change(session, "feature.created", layer.id, data)


_GEOJSON_POSITION_BYTES = 40  # about, "[12.345678901,54.321098765]," (what `run_sized` weighs)


async def _change(
    session: AsyncSession, type_: str, layer_id: uuid.UUID, data: dict[str, Any]
) -> Change:
    """A committed change to the layer's features: its tiles and every map showing it."""
    maps = await maps_containing(session, layer_id=layer_id)
    return Change(type_, data, maps, layer_id=layer_id)


async def insert_rows(session: AsyncSession, features: builtins.list[LayerFeature]) -> None:
    """One multi-row INSERT per batch (much faster than the ORM's unit of work)."""
    rows = [
        {
            "id": f.id,
            "layer_id": f.layer_id,
            "geometry": f.geometry,
            "properties": f.properties,
            "display_order": f.display_order,
            "feature_type": f.feature_type,
            "created_at": f.created_at,
            "updated_at": f.updated_at,
        }
        for f in features
    ]
    for start in range(0, len(rows), 5000):
        await session.execute(insert(LayerFeature), rows[start : start + 5000])


def parse_update(
    body: Any, *, max_feature_vertices: int = DEFAULT_MAX_FEATURE_VERTICES
) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise BadInput("Send a GeoJSON Feature or an object with geometry/properties")
    unknown = set(body) - {"type", "id", "geometry", "properties", "display_order"}
    if unknown:
        raise BadInput(f"Unknown fields: {', '.join(sorted(unknown))}")
    if body.get("type") not in (None, "Feature"):
        raise BadInput("'type' must be 'Feature'")
    values: dict[str, Any] = {}
    if "geometry" in body:
        values["geometry"] = parse_geojson_geometry(
            body["geometry"],
            max_vertices=max_feature_vertices,
            path="geometry",
            limit_name=FEATURE_LIMIT,
        )
    if "properties" in body:
        properties = body["properties"]
        if properties is not None and not isinstance(properties, Mapping):
            raise BadInput("'properties' must be an object", detail={"path": "properties"})
        values["properties"] = dict(properties or {})
    order = _display_order(body, "")
    if order is not None:
        values["display_order"] = order
    if not values:
        raise BadInput("Nothing to update: send geometry, properties or display_order")
    return values


def decode_update(raw: bytes, *, max_feature_vertices: int) -> dict[str, Any]:
    """`parse_update` of a raw JSON body (one call, so it can run in a worker process)."""
    return parse_update(loads_object(raw), max_feature_vertices=max_feature_vertices)


async def update(
    session: AsyncSession, *, layer_id: uuid.UUID, feature_id: uuid.UUID, values: dict[str, Any]
) -> Change:
    """The feature changed as `values` say; the change's data holds it as GeoJSON."""
    layer = await lock_layer(session, layer_id=layer_id)
    require_vector(layer)
    feature = await get_or_raise(session, layer=layer, feature_id=feature_id)
    for key, value in values.items():
        setattr(feature, key, value)
    feature.updated_at = utcnow()
    await session.flush()
    # Geometry changes move bounds and types: recompute; otherwise only the revision moves.
    added = None if "geometry" in values else (0, None, set[str]())
    await refresh_stats(session, layer=layer, added=added)
    await session.commit()
    # A large geometry is written as GeoJSON off the event loop.
    size = 0
    if "geometry" in values:
        size = _GEOJSON_POSITION_BYTES * int(shapely.get_num_coordinates(feature.geometry))
    data = await run_sized(size, feature_dict, written(feature))
    return await _change(
        session, "feature.updated", layer.id, {"layer_id": str(layer.id), "feature": data}
    )


async def delete(session: AsyncSession, *, layer_id: uuid.UUID, feature_id: uuid.UUID) -> Change:
    layer = await lock_layer(session, layer_id=layer_id)
    require_vector(layer)
    feature = await get_or_raise(session, layer=layer, feature_id=feature_id)
    await session.delete(feature)
    await session.flush()
    await refresh_stats(session, layer=layer)
    await session.commit()
    data = {"layer_id": str(layer.id), "id": str(feature_id)}
    return await _change(session, "feature.deleted", layer.id, data)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
