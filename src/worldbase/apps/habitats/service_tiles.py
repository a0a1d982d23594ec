"""Habitat tiles: one habitat's class (or vector shape) in its colour, or every habitat;
what each tile is (its key) and how it is drawn, for `geo.tile_cache.serve`.

A tile's cache key and ETag come from what it depends on: the habitat's colour, raster
class and `updated_at` (every edit bumps it) and the raster's URL, so an edit or another
raster uses new keys and old tiles simply age out. The all-habitats tiles depend on every
habitat's version, hashed into one string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from shapely.geometry import box
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.habitats import codes, tile_state
from worldbase.apps.habitats.models import Habitat
from worldbase.apps.habitats.raster import OWN_STORAGE, raster_url
from worldbase.apps.habitats.service import TileHabitat
from worldbase.core.services import Services
from worldbase.geo import classified
from worldbase.geo.classified import RGBA, VectorLayer
from worldbase.geo.spatial import intersects
from worldbase.geo.tile_cache import Render, TileCache, TileKey, tile_key
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


@dataclass(frozen=True)
class TileAddress:
    """Which tile, in which image format (`png` or `webp`); z/x/y validated."""

    z: int
    x: int
    y: int
    format: str

    @property
    def media_type(self) -> str:
        return classified.MEDIA_TYPES[self.format]


async def habitat_tile(
    session: AsyncSession, tiles: TileCache, services: Services, habitat_id: int, at: TileAddress
) -> tuple[TileKey, Render]:
    """One habitat's tile: its raster class in its colour, its shape drawn over it."""
    habitat = await tile_state.tile_habitat(session, tiles.cache, habitat_id=habitat_id)
    version = habitat.version
    return await _tile(session, services, [habitat], str(habitat.id), version, at)


async def all_tile(
    session: AsyncSession, tiles: TileCache, services: Services, at: TileAddress
) -> tuple[TileKey, Render]:
    """Every habitat's tile, coloured by the habitats table."""
    habitats = await tile_state.tile_habitats(session, tiles.cache)
    return await _tile(session, services, habitats, ALL, all_version(habitats), at)


async def _tile(
    session: AsyncSession,
    services: Services,
    habitats: Sequence[TileHabitat],
    layer_id: str,
    version: str,
    at: TileAddress,
) -> tuple[TileKey, Render]:
    colors = colors_of(habitats)
    settings = services.settings
    url = await raster_url(settings, services.storage) if colors else None
    key = key_for(layer_id, version, url or "", z=at.z, x=at.x, y=at.y, fmt=at.format)
    vector_ids = [h.id for h in habitats if h.has_geometry]

    async def render() -> bytes:
        vectors = await vectors_in_tile(session, ids=vector_ids, z=at.z, x=at.x, y=at.y)
        return await classified.render_tile(
            url, settings=settings, z=at.z, x=at.x, y=at.y, colors=colors, vectors=vectors,
            fmt=at.format, own_storage=OWN_STORAGE,
        )  # fmt: skip

    return key, render
