"""Layers: the library, configuration per source type, derived statistics of vector layers."""

from __future__ import annotations

import builtins
import uuid
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.access import maps_containing, readable_layers
from worldbase.apps.samsyn.events import Change
from worldbase.apps.samsyn.layers.source_config import (
    DERIVED_VECTOR_KEYS,
    validate_source_config,
)
from worldbase.apps.samsyn.models import CreationSource, Layer, LayerFeature, SourceType
from worldbase.apps.samsyn.raster import service as service_raster
from worldbase.apps.samsyn.schemas import LayerRead
from worldbase.apps.samsyn.wms import pending
from worldbase.apps.samsyn.wms import service as service_wms
from worldbase.core.db import utcnow
from worldbase.core.errors import BadInput, NotFound
from worldbase.core.models import User
from worldbase.geo.rtree import quote, rtree_name
from worldbase.settings import Settings

# WKB geometry type codes (first byte of the little-endian uint32 after the byte-order mark).
WKB_TYPES = {
    1: "Point",
    2: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


def _like(text_: str) -> str:
    escaped = text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


async def list(
    session: AsyncSession,
    *,
    user: User | None,
    source_type: SourceType | None,
    category: str | None,
    q: str | None,
    is_global: bool | None,
    limit: int,
    offset: int,
    drawn_by: User | None = None,
    newest_first: bool = False,
) -> tuple[builtins.list[Layer], int]:
    """The library: global and public layers, the caller's own and those on maps the caller
    can read. `drawn_by`: only that user's own non-global layers made in the layer creator
    (SamSyn's "My layers")."""
    filters = [readable_layers(user)]
    if drawn_by is not None:
        filters += [
            Layer.created_by == drawn_by.id,
            Layer.is_global.is_(False),
            Layer.creation_source == CreationSource.layer_creator,
        ]
    if source_type is not None:
        filters.append(Layer.source_type == source_type)
    if category is not None:
        filters.append(func.lower(Layer.category) == category.lower())
    if is_global is not None:
        filters.append(Layer.is_global.is_(is_global))
    if q:
        pattern = _like(q)
        filters.append(
            or_(
                func.lower(Layer.name).like(pattern, escape="\\"),
                func.lower(func.coalesce(Layer.description, "")).like(pattern, escape="\\"),
                func.lower(func.coalesce(Layer.category, "")).like(pattern, escape="\\"),
            )
        )
    total = await session.scalar(select(func.count()).select_from(Layer).where(*filters))
    order = (Layer.created_at.desc(), Layer.id) if newest_first else (Layer.name, Layer.id)
    rows = await session.scalars(
        select(Layer).where(*filters).order_by(*order).limit(limit).offset(offset)
    )
    return [*rows], int(total or 0)


async def get_or_raise(session: AsyncSession, *, layer_id: uuid.UUID) -> Layer:
    layer = await session.get(Layer, layer_id)
    if layer is None:
        raise NotFound("Layer not found")
    return layer


async def create(
    session: AsyncSession,
    *,
    user: User,
    values: dict[str, Any],
    commit: bool = True,
    settings: Settings | None = None,
    derived_stats: bool = True,
) -> Layer:
    """`settings` given: a WMS layer is checked against the WMS's capabilities first, a
    GeoTIFF layer's COG URLs against the source allow-list. `derived_stats` False (SamSyn's
    API): a vector layer's `source_config` is the client's until it has features."""
    values = dict(values)
    source_type = values["source_type"] = SourceType(values["source_type"])
    config = values.get("source_config", {})
    if source_type == SourceType.wms and settings is not None:
        config = await service_wms.complete_config(config, settings=settings)
    values["source_config"] = validate_source_config(
        source_type, config, derived_stats=derived_stats
    )
    if source_type == SourceType.geotiff and settings is not None:
        service_raster.check_sources(values["source_config"], settings)
    values["meta"] = values.pop("metadata", None) or {}
    layer = Layer(created_by=user.id, **values)
    session.add(layer)
    if commit:
        await session.commit()
    else:
        await session.flush()
    return layer


def layer_read(layer: Layer) -> dict[str, Any]:
    """The layer as the API shows it (responses and events)."""
    return LayerRead.model_validate(layer).model_dump(mode="json")


async def update(
    session: AsyncSession,
    *,
    layer: Layer,
    values: dict[str, Any],
    settings: Settings | None = None,
    type_change: bool = False,
) -> Change:
    """The layer changed as `values` say; the change's data is the layer as read."""
    before = layer.source_type
    await apply(session, layer=layer, values=values, settings=settings, type_change=type_change)
    await session.commit()
    return await updated(
        session, layer=layer, new_config="source_config" in values, previous_type=before
    )


async def _new_type(
    session: AsyncSession, *, layer: Layer, source_type: SourceType, values: dict[str, Any]
) -> None:
    """Checks a change of source type (SamSyn's API allows it): the configuration the layer
    will have must suit the new type (validated by the caller); a vector layer's features
    must be gone first (they would be left unseen)."""
    if layer.source_type == SourceType.vector:
        has_features = await session.scalar(
            select(LayerFeature.id).where(LayerFeature.layer_id == layer.id).limit(1)
        )
        if has_features is not None:
            raise BadInput(
                f"A vector layer with features cannot become {source_type.value}: "
                "delete its features first"
            )
    if values.get("source_config") is None:
        current = pending.strip(layer.source_config or {})
        values["source_config"] = {k: v for k, v in current.items() if k not in DERIVED_VECTOR_KEYS}


async def apply(
    session: AsyncSession,
    *,
    layer: Layer,
    values: dict[str, Any],
    settings: Settings | None = None,
    type_change: bool = False,
) -> None:
    """`update` without the commit (a caller that changes more in the same transaction).
    `type_change` (SamSyn's API): `source_type` may change when the layer's configuration
    (the one sent, else the current one) validates for the new type."""
    values = dict(values)
    source_type = values.pop("source_type", None)
    new_type = layer.source_type
    if source_type is not None and source_type != layer.source_type:
        if not type_change:
            raise BadInput("A layer's source_type cannot change; create a new layer instead")
        new_type = SourceType(source_type)
        await _new_type(session, layer=layer, source_type=new_type, values=values)
    if "metadata" in values:
        values["meta"] = values.pop("metadata") or {}
    if values.get("source_config") is not None:
        config = values["source_config"]
        if new_type == SourceType.wms and settings is not None:
            config = await service_wms.complete_config(config, settings=settings)
        try:
            config = validate_source_config(new_type, config)
        except BadInput as exc:
            if new_type == layer.source_type:
                raise
            raise BadInput(
                f"source_type cannot become {new_type.value}: {exc.message}", detail=exc.detail
            ) from None
        if new_type == SourceType.geotiff and settings is not None:
            previous = layer.source_config if layer.source_type == SourceType.geotiff else None
            service_raster.check_sources(config, settings, previous=previous)
        if new_type == SourceType.vector and layer.source_type == SourceType.vector:
            # The derived statistics are the server's, whatever the client sent.
            config |= {k: layer.source_config.get(k) for k in DERIVED_VECTOR_KEYS}
        values["source_config"] = config
    if new_type != layer.source_type:
        values["source_type"] = new_type
    for key, value in values.items():
        if value is None and key in ("source_config", "style_config", "legend_config", "meta"):
            value = {}
        if value is None and key in NOT_NULLABLE:
            continue  # an explicit null leaves the value as it was
        setattr(layer, key, value)
    layer.updated_at = utcnow()


NOT_NULLABLE = ("name", "editable", "is_global", "visibility", "creation_source")


async def updated(
    session: AsyncSession,
    *,
    layer: Layer,
    new_config: bool,
    previous_type: SourceType | None = None,
) -> Change:
    """The committed update of `layer` as a change (its maps hear of it, its tiles go)."""
    was_geotiff = SourceType.geotiff in (layer.source_type, previous_type)
    return Change(
        "layer.updated",
        layer_read(layer),
        await maps_containing(session, layer_id=layer.id),
        layer_id=layer.id,
        drop_stored=SourceType.geotiff if new_config and was_geotiff else None,
    )


async def delete(session: AsyncSession, *, layer: Layer) -> Change:
    layer_id, source_type = layer.id, layer.source_type
    maps = await maps_containing(session, layer_id=layer_id)  # before it leaves them
    await session.delete(layer)
    await session.commit()
    return Change(
        "layer.deleted", {"id": str(layer_id)}, maps, layer_id=layer_id, drop_stored=source_type
    )


# --- Derived statistics of vector layers ---------------------------------------------------


def _bounds(box: tuple[Any, ...] | None) -> builtins.list[builtins.list[float]] | None:
    if box is None or box[0] is None:
        return None
    minx, miny, maxx, maxy = (float(v) for v in box)
    return [[minx, miny], [maxx, maxy]]


async def _stats_sql(session: AsyncSession, layer_id: uuid.UUID) -> tuple[int, Any, set[str]]:
    count = int(
        await session.scalar(
            select(func.count()).select_from(LayerFeature).where(LayerFeature.layer_id == layer_id)
        )
        or 0
    )
    if count == 0:
        return 0, None, set()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        row = (
            await session.execute(
                text(
                    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ("
                    "SELECT ST_Extent(geometry) AS e FROM layer_features WHERE layer_id = :id) s"
                ),
                {"id": layer_id},
            )
        ).first()
        types = await session.scalars(
            text(
                "SELECT DISTINCT replace(ST_GeometryType(geometry), 'ST_', '') "
                "FROM layer_features WHERE layer_id = :id"
            ),
            {"id": layer_id},
        )
        return count, tuple(row) if row else None, set(types)
    rtree = quote(rtree_name("layer_features", "geometry"))
    # The R*Tree holds each feature's box (float32, rounded outward): no geometry is parsed.
    row = (
        await session.execute(
            text(
                f"SELECT min(r.minx), min(r.miny), max(r.maxx), max(r.maxy) FROM {rtree} r "  # noqa: S608
                "JOIN layer_features f ON f.rowid = r.id WHERE f.layer_id = :id"
            ),
            {"id": layer_id.hex},
        )
    ).first()
    codes = await session.scalars(
        text(
            "SELECT DISTINCT unicode(substr(geometry, 2, 1)) FROM layer_features "
            "WHERE layer_id = :id"
        ),
        {"id": layer_id.hex},
    )
    return count, tuple(row) if row else None, {WKB_TYPES.get(int(c), "Geometry") for c in codes}


def _summary(types: set[str]) -> str | None:
    if not types:
        return None
    return next(iter(types)) if len(types) == 1 else "Mixed"


async def refresh_stats(
    session: AsyncSession,
    *,
    layer: Layer,
    added: tuple[int, tuple[float, float, float, float] | None, set[str]] | None = None,
) -> None:
    """Recompute featureCount, bounds and geometry types, and bump `revision` (tile caches
    key on it). `added` (count, bounds, types of new features only) updates incrementally."""
    config = dict(layer.source_config or {})
    if added is not None and config.get("featureCount") is not None:
        count, box, types = added
        old = config.get("bounds")
        if old and box:
            box = (
                min(old[0][0], box[0]),
                min(old[0][1], box[1]),
                max(old[1][0], box[2]),
                max(old[1][1], box[3]),
            )
        elif old:
            box = (old[0][0], old[0][1], old[1][0], old[1][1])
        total = int(config.get("featureCount") or 0) + count
        all_types = set(config.get("geometryTypes") or []) | types
    else:
        total, box, all_types = await _stats_sql(session, layer.id)
    config |= {
        "featureCount": total,
        "bounds": _bounds(box),
        "geometryTypes": sorted(all_types),
        "geometryType": _summary(all_types),
        "revision": int(config.get("revision") or 0) + 1,
    }
    layer.source_config = config
    layer.updated_at = utcnow()
