"""Vector tiles of a layer, rendered on the hot path. The caller checked access with
`raster.service.get_or_raise` (one statement for the layer row, a second only for layers
neither global nor the caller's). On PostgreSQL the tile is one statement,
`geo.vector_tiles.postgis_tile_sql`, run raw on the request's connection
(`core.db.fetch_value`: prepared once per connection). No ORM objects are loaded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.models import LayerFeature, SourceType
from worldbase.apps.samsyn.raster.service import RasterLayer
from worldbase.core.db import fetch_value
from worldbase.geo.vector_tiles import postgis_tile_sql, render_mvt, tile_args

MAX_FEATURES = 10_000  # per tile, as tipg; see geo.vector_tiles on low zooms
LAYER_NAME = "features"

POINT_TYPES = ("Point", "MultiPoint")


def _mvt_sql(tile: str, *, exact: bool) -> str:
    """This app's tile statement: parameters $1 the layer, $2 the cap, $3-$5 the tile."""
    return postgis_tile_sql(
        "layer_features", "geometry", ["id", "properties"], where="layer_id = $1",
        tile=tile, limit="$2", layer_name=LAYER_NAME, exact=exact,
    )  # fmt: skip


_SHARED_TILE = "$3, $4, $5"
_MVT_SQL = {exact: _mvt_sql(_SHARED_TILE, exact=exact) for exact in (False, True)}


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


async def render(
    session: AsyncSession, *, layer_id: uuid.UUID, z: int, x: int, y: int, points_only: bool = True
) -> bytes:
    """The layer's tile z/x/y (`b""` when empty); the caller validated z/x/y and access."""
    exact = not points_only
    if session.get_bind().dialect.name == "postgresql":
        tile = tile_args(z, x, y, _SHARED_TILE)
        if tile == _SHARED_TILE:
            data = await fetch_value(session, _MVT_SQL[exact], layer_id, MAX_FEATURES, z, x, y)
        else:
            data = await fetch_value(session, _mvt_sql(tile, exact=exact), layer_id, MAX_FEATURES)
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
        exact=exact,
    )
