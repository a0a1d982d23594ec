"""Features of vector layers: GeoJSON out (built as text, no per-row parsing), validated in."""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.access import maps_containing
from worldbase.apps.samsyn.events import Change
from worldbase.apps.samsyn.features.pages import Box as Box
from worldbase.apps.samsyn.features.pages import FeaturePage as FeaturePage
from worldbase.apps.samsyn.features.pages import Shape as Shape
from worldbase.apps.samsyn.features.pages import list as list
from worldbase.apps.samsyn.layers.service import refresh_stats
from worldbase.apps.samsyn.models import Layer, LayerFeature, SourceType
from worldbase.apps.samsyn.raster.service import RasterLayer
from worldbase.core.db import utcnow
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

MAX_FEATURES_PER_REQUEST = 10_000


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


# Reading: `pages` (re-exported: `list`, `FeaturePage`, `Shape`).


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
