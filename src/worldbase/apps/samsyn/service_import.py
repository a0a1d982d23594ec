"""Importing a GeoJSON, GeoPackage, zipped Shapefile or CSV (WKT or lon/lat) file into a new
vector layer: all or nothing (one transaction; the first bad row fails the whole import,
named by its row or index)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn import service_layers
from worldbase.apps.samsyn.models import Layer, LayerFeature
from worldbase.apps.samsyn.service_features import summarize
from worldbase.core.db import utcnow
from worldbase.core.errors import BadInput
from worldbase.core.models import User
from worldbase.geo.vector_io import ImportedFeature, bulk_insert_features, read_features

# Uploads up to this size are imported during the request; larger ones become a job.
INLINE_IMPORT_BYTES = 2 * 1024 * 1024


def _read_all(path: Path, filename: str) -> list[ImportedFeature]:
    return list(read_features(path, filename=filename))


async def import_file(
    session: AsyncSession, *, user: User, path: Path, filename: str, values: dict[str, Any]
) -> Layer:
    """Creates the layer and every feature, or nothing."""
    features = await asyncio.to_thread(_read_all, path, filename)
    if not features:
        raise BadInput(f"{filename} has no features")
    layer = await service_layers.create(
        session, user=user, values=values | {"source_type": "vector"}, commit=False
    )
    now = utcnow()
    rows = (
        {
            "id": uuid.uuid4(),
            "layer_id": layer.id,
            "geometry": f.geometry,
            "properties": f.properties,
            "display_order": i,
            "created_at": now,
            "updated_at": now,
        }
        for i, f in enumerate(features)
    )
    await bulk_insert_features(session, LayerFeature.__table__, rows)  # type: ignore[arg-type]
    await service_layers.refresh_stats(
        session, layer=layer, added=summarize([f.geometry for f in features])
    )
    await session.commit()
    return layer
