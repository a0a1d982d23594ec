"""Importing a GeoJSON, GeoPackage, zipped Shapefile or CSV (WKT or lon/lat) file into a new
vector layer: all or nothing (one transaction; the first bad row fails the whole import,
named by its row or index). A feature with more than WORLDBASE_MAX_FEATURE_VERTICES
positions is a bad row too (422 naming the setting), as in the feature write routes.

The file is read, validated and encoded for the driver in a worker thread, one chunk ahead
of the writes: while a chunk is COPYed (PostgreSQL's per-row work, the foreign key check and
the GiST insertions, runs in the server meanwhile), the thread makes the next one."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import aclosing
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.features.service import FEATURE_LIMIT, Box, summarize
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.models import Layer, LayerFeature
from worldbase.core.db import utcnow
from worldbase.core.errors import BadInput
from worldbase.core.models import User
from worldbase.geo.bulk_insert import PreparedRows, insert_prepared, prepare_rows, read_ahead
from worldbase.geo.vector_io import read_features

# Uploads up to this size are imported during the request; larger ones become a job.
INLINE_IMPORT_BYTES = 2 * 1024 * 1024
# Features per write: at most two chunks are in memory (one written, the next being made).
CHUNK_FEATURES = 10_000
# The first chunk is small: the writes start as soon as it is read, not after a whole chunk.
FIRST_CHUNK_FEATURES = 1_000

Stats = tuple[int, Box | None, set[str]]


def _chunks(
    path: Path,
    filename: str,
    *,
    layer_id: uuid.UUID,
    dialect: Dialect,
    now: datetime,
    size: int,
    max_feature_vertices: int,
) -> Iterator[tuple[PreparedRows, Stats]]:
    """The file's features, validated and encoded for the driver, `size` at a time (the
    first chunk at most FIRST_CHUNK_FEATURES), each chunk with its stats (`summarize`).
    Runs in the worker thread, file opening included."""
    features = read_features(
        path, filename=filename, max_vertices=max_feature_vertices, limit_name=FEATURE_LIMIT
    )
    order = 0  # display_order runs on across chunks
    sizes = itertools.chain([min(size, FIRST_CHUNK_FEATURES)], itertools.repeat(size))
    while batch := list(itertools.islice(features, next(sizes))):
        rows = [
            {
                "layer_id": layer_id,
                "geometry": f.geometry,
                "properties": f.properties,
                "display_order": order + i,
                "created_at": now,
                "updated_at": now,
            }
            for i, f in enumerate(batch)
        ]
        order += len(batch)
        stats = summarize([f.geometry for f in batch])
        yield prepare_rows(LayerFeature.__table__, rows, dialect), stats  # type: ignore[arg-type]


def _combine(a: Stats, b: Stats) -> Stats:
    """The stats of two sets of features from theirs (what `summarize` gives for both)."""
    box = a[1] if b[1] is None else b[1] if a[1] is None else _union(a[1], b[1])
    return a[0] + b[0], box, a[2] | b[2]


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


async def import_file(
    session: AsyncSession,
    *,
    user: User,
    path: Path,
    filename: str,
    values: dict[str, Any],
    max_feature_vertices: int,
) -> Layer:
    """Creates the layer and every feature, or nothing (a failure rolls the session back);
    a feature past `max_feature_vertices` positions fails it (422 naming the feature)."""
    # The id is chosen here so that the thread can encode rows before the layer row exists;
    # the layer is created with the first chunk, so an unreadable or empty file writes nothing.
    layer_id = uuid.uuid4()
    chunks = _chunks(
        path,
        filename,
        layer_id=layer_id,
        dialect=session.get_bind().dialect,
        now=utcnow(),
        size=CHUNK_FEATURES,
        max_feature_vertices=max_feature_vertices,
    )
    layer: Layer | None = None
    stats: Stats = (0, None, set())
    try:
        async with aclosing(read_ahead(chunks)) as ahead:
            async for prepared, chunk_stats in ahead:
                if layer is None:
                    layer = await service_layers.create(
                        session,
                        user=user,
                        values=values | {"source_type": "vector", "id": layer_id},
                        commit=False,
                    )
                await insert_prepared(session, prepared)
                stats = _combine(stats, chunk_stats)
        if layer is None:
            raise BadInput(f"{filename} has no features")
        await service_layers.refresh_stats(session, layer=layer, added=stats)
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return layer
