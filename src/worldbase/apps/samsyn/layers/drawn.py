"""Drawn vector layers: SamSyn's frontend sends a vector layer's features as one GeoJSON
FeatureCollection in `source_config.geojson`, on create and on every edit.

The collection stays in `source_config` (the frontend reads it back from there) and its
features replace the layer's rows in the feature table in the same transaction, through the
features service's parser and bulk writer, so tiles, bbox queries and the derived
statistics (`featureCount`, `bounds`, `revision`) see exactly what was drawn.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.events import Change
from worldbase.apps.samsyn.features import service as service_features
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.models import Layer, LayerFeature, SourceType
from worldbase.apps.samsyn.settings import SamsynSettings
from worldbase.core.db import utcnow
from worldbase.core.errors import BadInput
from worldbase.core.models import User
from worldbase.settings import Settings


@dataclass(frozen=True)
class Limits:
    max_feature_vertices: int
    max_request_vertices: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.worldbase_max_feature_vertices,
            settings.app(SamsynSettings).max_request_vertices,
        )


def drawn_features(values: Mapping[str, Any]) -> Any:
    """The FeatureCollection a create or update body carries, if any."""
    config = values.get("source_config")
    return config.get("geojson") if isinstance(config, Mapping) else None


def _parse(collection: Any, limits: Limits) -> list[tuple[Any, dict[str, Any], int | None]]:
    if not isinstance(collection, Mapping) or collection.get("type") != "FeatureCollection":
        raise BadInput(
            "source_config.geojson must be a GeoJSON FeatureCollection",
            detail={"path": "source_config.geojson"},
        )
    if not collection.get("features"):
        return []  # every feature deleted
    return service_features.parse_input(
        collection,
        max_feature_vertices=limits.max_feature_vertices,
        max_request_vertices=limits.max_request_vertices,
    )


async def _replace(
    session: AsyncSession, *, layer: Layer, items: list[tuple[Any, dict[str, Any], int | None]]
) -> None:
    """The layer's features become `items` (no commit: the caller's transaction)."""
    await session.execute(delete(LayerFeature).where(LayerFeature.layer_id == layer.id))
    now = utcnow()
    rows = [
        LayerFeature(
            id=uuid.uuid4(),
            layer_id=layer.id,
            geometry=geometry,
            properties=properties,
            display_order=index if order is None else order,
            created_at=now,
            updated_at=now,
        )
        for index, (geometry, properties, order) in enumerate(items)
    ]
    await service_features.insert_rows(session, rows)
    await service_layers.refresh_stats(session, layer=layer)


async def create(
    session: AsyncSession,
    *,
    user: User,
    values: dict[str, Any],
    settings: Settings,
    derived_stats: bool = True,
) -> Layer:
    """`layers.service.create`, plus the drawn features of a vector layer, all or nothing."""
    collection = drawn_features(values)
    if values.get("source_type") != SourceType.vector or collection is None:
        return await service_layers.create(
            session, user=user, values=values, settings=settings, derived_stats=derived_stats
        )
    items = _parse(collection, Limits.of(settings))
    layer = await service_layers.create(
        session, user=user, values=values, settings=settings, commit=False
    )
    await _replace(session, layer=layer, items=items)
    await session.commit()
    return layer


async def update(
    session: AsyncSession,
    *,
    layer: Layer,
    values: dict[str, Any],
    settings: Settings,
    type_change: bool = False,
) -> Change:
    """`layers.service.update`, plus the drawn features of a vector layer, all or nothing.
    `type_change`: `source_type` may change (`layers.service.apply`)."""
    collection = drawn_features(values)
    target = values.get("source_type") or layer.source_type
    if target != SourceType.vector or collection is None:
        return await service_layers.update(
            session, layer=layer, values=values, settings=settings, type_change=type_change
        )
    items = _parse(collection, Limits.of(settings))
    before = layer.source_type
    # Concurrent writers of this layer's features wait here (PostgreSQL row lock).
    layer = await service_features.lock_layer(session, layer_id=layer.id)
    await service_layers.apply(
        session, layer=layer, values=values, settings=settings, type_change=type_change
    )
    await _replace(session, layer=layer, items=items)
    await session.commit()
    return await service_layers.updated(session, layer=layer, new_config=True, previous_type=before)
