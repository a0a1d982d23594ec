"""Habitat tiles: one habitat's class (or vector shape) in its colour, or every habitat.

A tile's cache key and ETag come from what it depends on: the habitat's colour, raster
class and `updated_at` (every edit bumps it) and the raster's URL, so an edit or another
raster uses new keys and old tiles simply age out. The all-habitats tiles depend on every
habitat's version, hashed into one string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from shapely.geometry import box
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.habitats import codes
from worldbase.apps.habitats.models import Habitat
from worldbase.apps.habitats.service import TileHabitat
from worldbase.geo.classified import RGBA, VectorLayer
from worldbase.geo.spatial import intersects
from worldbase.geo.tile_cache import TileKey, tile_key
from worldbase.geo.tiles import tile_bounds_lonlat

NAMESPACE = "habitats"
ALL = "all"
TILESIZE = 256


def key_for(
    layer_id: str, version: str, raster_url: str, *, z: int, x: int, y: int, fmt: str
) -> TileKey:
    return tile_key(
        namespace=NAMESPACE,
        layer_id=layer_id,
        version=hashlib.blake2b(version.encode(), digest_size=8).hexdigest(),
        params=f"raster={raster_url};tilesize={TILESIZE}",
        z=z,
        x=x,
        y=y,
        fmt=fmt,
    )


def all_version(habitats: Sequence[TileHabitat]) -> str:
    return ";".join(f"{h.id}={h.version}:{h.has_geometry}" for h in habitats) or "none"


def colors_of(habitats: Sequence[TileHabitat]) -> dict[int, RGBA]:
    return {h.raster_value: codes.rgba(h.color_hex) for h in habitats if h.raster_value is not None}


async def vectors_in_tile(
    session: AsyncSession, *, ids: Sequence[int], z: int, x: int, y: int
) -> list[VectorLayer]:
    """The vector shapes of these habitats that touch tile z/x/y, in their colours."""
    if not ids:
        return []
    rows = await session.execute(
        select(Habitat.geometry, Habitat.color_hex)
        .where(
            Habitat.id.in_(ids),
            Habitat.geometry.is_not(None),
            intersects(Habitat.geometry, box(*tile_bounds_lonlat(z, x, y))),
        )
        .order_by(Habitat.id)
    )
    return [VectorLayer(geometry, codes.rgba(color)) for geometry, color in rows]
