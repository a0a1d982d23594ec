"""Vector tiles of a layer: the permission check and the rendering, on the hot path.

A tile request needs "the layer and whether the caller may read it" (`tile_layer`: the
layer row, cached for a couple of seconds and dropped when the layer or its features
change; a second statement only for layers neither global nor the caller's, to look
through maps) and, on a cache miss, one statement for the tile, on PostgreSQL through the
read pool (`Database.read_value`). A library layer's cached row answers an anonymous
request with no session at all (`public_tile_layer`). No ORM objects are loaded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.models import LayerFeature, SourceType
from worldbase.apps.samsyn.raster import service as service_raster
from worldbase.apps.samsyn.raster.service import RasterLayer
from worldbase.core.db import Database
from worldbase.core.models import User
from worldbase.geo.vector_tiles import BUFFER, EXTENT, render_mvt

MAX_FEATURES = 10_000  # per tile, as tipg; see geo.vector_tiles on low zooms
LAYER_NAME = "features"

POINT_TYPES = ("Point", "MultiPoint")
LOW_ZOOM = 12  # below it a tile reads thousands of rows: see `_mvt_sql`


def _mvt_sql(tile: str, *, exact: bool) -> str:
    """geo.vector_tiles.postgis_tile_statement for this table, as text (prepared by asyncpg);
    `tile` is the ST_TileEnvelope arguments, `$3, $4, $5` or the tile's own integers.

    Why two forms: a shared prepared statement runs on PostgreSQL's generic plan after five
    executions, which at z8-z10 over dense polygons is about twice as slow as a plan made
    for the tile (a parallel bitmap scan; measured 127 vs 69 ms at z8). Low-zoom tiles are
    few and slow, so each gets its own statement text (the integers are validated); high
    zooms share one, where planning would cost as much as the query. In the shared one the
    envelopes sit in a one-row subquery that is not flattened (`OFFSET 0`): a generic plan
    would otherwise compute ST_TileEnvelope again for every row (-10% at z12-z14 polygons).

    `exact` (layers with lines or polygons) filters with ST_Intersects instead of the boxes
    alone: a shape whose box reaches the tile but which does not is clipped away anyway, and
    clipping it cost ~20% at z10-z12; for points the exact test is the slower one (2x)."""
    search = f"ST_Transform(ST_TileEnvelope({tile}, margin => {BUFFER / EXTENT!r}), 4326)"
    clip = f"ST_TileEnvelope({tile})"
    source = "layer_features"
    if tile.startswith("$"):
        source += f", (SELECT {clip} AS clip, {search} AS search OFFSET 0) AS envelope"
        search, clip = "envelope.search", "envelope.clip"
    where = f"ST_Intersects(geometry, {search})" if exact else f"geometry && {search}"
    return f"""
SELECT ST_AsMVT(t, '{LAYER_NAME}', {EXTENT}, 'geom') FROM (
  SELECT ST_AsMVTGeom(ST_Transform(geometry, 3857), {clip},
                      {EXTENT}, {BUFFER}, true) AS geom, id, properties
  FROM {source}
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

    @classmethod
    def of(cls, layer: RasterLayer) -> TileLayer:
        config = layer.config
        types = config.get("geometryTypes") or []
        return cls(
            layer.id,
            layer.source_type,
            str(config.get("revision") or 0),
            layer.is_global,
            all(t in POINT_TYPES for t in types),
        )


async def tile_layer(session: AsyncSession, *, layer_id: uuid.UUID, user: User | None) -> TileLayer:
    """The layer's type and data revision; `NotFound` when missing or not readable."""
    return TileLayer.of(await service_raster.get_or_raise(session, layer_id=layer_id, user=user))


def public_tile_layer(layer_id: uuid.UUID) -> TileLayer | None:
    """A library layer whose row this process holds (fresh): anyone may read its tiles,
    so an anonymous request needs no session at all. None otherwise (ask `tile_layer`)."""
    row = service_raster.fresh_row(layer_id)
    if row is None or not row.is_global:
        return None
    return TileLayer.of(row.layer)


async def render(
    db: Database, *, layer_id: uuid.UUID, z: int, x: int, y: int, points_only: bool = True
) -> bytes:
    """The layer's tile z/x/y (`b""` when empty); the caller validated z/x/y and access."""
    if not db.is_sqlite:
        exact = not points_only
        if z < LOW_ZOOM:
            sql = _mvt_sql(f"{int(z)}, {int(x)}, {int(y)}", exact=exact)
            data = await db.read_value(sql, layer_id, MAX_FEATURES)
        else:
            data = await db.read_value(_MVT_SQL[exact], layer_id, MAX_FEATURES, z, x, y)
        return bytes(data) if data else b""
    table = LayerFeature.__table__
    async with db.sessionmaker() as session:
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
