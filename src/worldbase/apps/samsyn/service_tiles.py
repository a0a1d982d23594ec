"""Vector tiles of a layer: the permission check and the rendering, on the hot path.

A tile request costs one statement for "the layer and whether the caller may read it"
(`tile_layer`; a second only for layers neither global nor the caller's, to look through
maps) and, on a cache miss, one for the tile. No ORM objects are loaded.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.access import can_read_layer_fields
from worldbase.apps.samsyn.models import Layer, LayerFeature, SourceType
from worldbase.apps.samsyn.pgraw import driver
from worldbase.core.errors import NotFound
from worldbase.core.models import User
from worldbase.geo.vector_tiles import BUFFER, EXTENT, render_mvt

MAX_FEATURES = 10_000  # per tile, as tipg; see geo.vector_tiles on low zooms
LAYER_NAME = "features"

POINT_TYPES = ("Point", "MultiPoint")
_LAYER_SQL = (
    "SELECT source_type, source_config ->> 'revision', is_global, created_by, "  # noqa: S608
    f"COALESCE(source_config -> 'geometryTypes' <@ '{json.dumps(POINT_TYPES)}'::jsonb, true) "
    "FROM layers WHERE id = $1"
)
LOW_ZOOM = 12  # below it a tile reads thousands of rows: see `_mvt_sql`


def _mvt_sql(tile: str, *, exact: bool) -> str:
    """geo.vector_tiles.postgis_tile_statement for this table, as text (prepared by asyncpg);
    `tile` is the ST_TileEnvelope arguments, `$3, $4, $5` or the tile's own integers.

    Why two forms: a shared prepared statement runs on PostgreSQL's generic plan after five
    executions, which at z8-z10 over dense polygons is about twice as slow as a plan made
    for the tile (a parallel bitmap scan; measured 127 vs 69 ms at z8). Low-zoom tiles are
    few and slow, so each gets its own statement text (the integers are validated); high
    zooms share one, where planning would cost as much as the query.

    `exact` (layers with lines or polygons) filters with ST_Intersects instead of the boxes
    alone: a shape whose box reaches the tile but which does not is clipped away anyway, and
    clipping it cost ~20% at z10-z12; for points the exact test is the slower one (2x)."""
    envelope = f"ST_Transform(ST_TileEnvelope({tile}, margin => {BUFFER / EXTENT!r}), 4326)"
    where = f"ST_Intersects(geometry, {envelope})" if exact else f"geometry && {envelope}"
    return f"""
SELECT ST_AsMVT(t, '{LAYER_NAME}', {EXTENT}, 'geom') FROM (
  SELECT ST_AsMVTGeom(ST_Transform(geometry, 3857), ST_TileEnvelope({tile}),
                      {EXTENT}, {BUFFER}, true) AS geom, id, properties
  FROM layer_features
  WHERE layer_id = $1 AND {where}
  LIMIT $2) t
"""  # noqa: S608 - constants and validated integers only


_MVT_SQL = {exact: _mvt_sql("$3, $4, $5", exact=exact) for exact in (False, True)}


@dataclass(frozen=True)
class TileLayer:
    id: uuid.UUID
    source_type: SourceType
    revision: str
    is_global: bool  # readable by everyone: its tiles are `public`
    points_only: bool = True  # no lines or polygons (picks the tile query's filter)


async def tile_layer(session: AsyncSession, *, layer_id: uuid.UUID, user: User | None) -> TileLayer:
    """The layer's type and data revision; `NotFound` when missing or not readable."""
    conn = await driver(session)
    if conn is not None:
        row = await conn.fetchrow(_LAYER_SQL, layer_id)
    else:
        config = Layer.source_config
        row = (
            await session.execute(
                select(Layer.source_type, config, Layer.is_global, Layer.created_by).where(
                    Layer.id == layer_id
                )
            )
        ).first()
        if row is not None:
            revision = (row[1] or {}).get("revision")
            types = (row[1] or {}).get("geometryTypes") or []
            points_only = all(t in POINT_TYPES for t in types)
            row = (row[0], None if revision is None else str(revision), row[2], row[3], points_only)
    if row is None:
        raise NotFound("Layer not found")
    source_type, revision, is_global, created_by, points_only = row
    readable = await can_read_layer_fields(
        session, layer_id=layer_id, is_global=is_global, created_by=created_by, user=user
    )
    if not readable:
        raise NotFound("Layer not found")
    return TileLayer(
        layer_id, SourceType(source_type), revision or "0", bool(is_global), bool(points_only)
    )


async def render(
    session: AsyncSession, *, layer_id: uuid.UUID, z: int, x: int, y: int, points_only: bool = True
) -> bytes:
    """The layer's tile z/x/y (`b""` when empty); the caller validated z/x/y."""
    conn = await driver(session)
    if conn is not None:
        exact = not points_only
        if z < LOW_ZOOM:
            sql = _mvt_sql(f"{int(z)}, {int(x)}, {int(y)}", exact=exact)
            data = await conn.fetchval(sql, layer_id, MAX_FEATURES)
        else:
            data = await conn.fetchval(_MVT_SQL[exact], layer_id, MAX_FEATURES, z, x, y)
        return bytes(data) if data else b""
    table = LayerFeature.__table__
    return await render_mvt(
        session,
        table=table,  # type: ignore[arg-type]
        geometry_column="geometry",
        property_columns=["id", "properties"],
        where=table.c.layer_id == layer_id,
        z=z,
        x=x,
        y=y,
        layer_name=LAYER_NAME,
        max_features=MAX_FEATURES,
    )
