"""What habitat tiles depend on, kept in the core cache so a cached tile costs no query.

A tile request needs the habitat's colour, raster class and `updated_at` (its cache key)
and a signed-in caller (core's `TokenHolder`, which caches verified tokens itself). The
habitat state is cached (memory, or Redis when configured, so every worker sees the same):
`habitats:tile:<id>` and `habitats:tile:all` until a habitat is written through the API
(the routes call `forget`; other writers show within `STATE_TTL`).
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.habitats import service
from worldbase.apps.habitats.service import TileHabitat
from worldbase.core.cache import Cache

PREFIX = "habitats:tile:"
ALL_KEY = PREFIX + "all"
# Writes through the API forget entries at once; writes from elsewhere (`worldbase import`)
# show on tiles within this many seconds.
STATE_TTL = 60


def _dump(h: TileHabitat) -> dict[str, object]:
    return {
        "id": h.id,
        "color_hex": h.color_hex,
        "raster_value": h.raster_value,
        "has_geometry": h.has_geometry,
        "updated_at": h.updated_at.isoformat(),
    }


def _load(data: dict[str, object]) -> TileHabitat:
    updated_at = datetime.fromisoformat(str(data["updated_at"]))
    return TileHabitat(
        id=int(data["id"]),  # type: ignore[call-overload]
        color_hex=str(data["color_hex"]),
        raster_value=None if data["raster_value"] is None else int(data["raster_value"]),  # type: ignore[call-overload]
        has_geometry=bool(data["has_geometry"]),
        updated_at=updated_at,
    )


async def tile_habitat(session: AsyncSession, cache: Cache, *, habitat_id: int) -> TileHabitat:
    key = f"{PREFIX}{habitat_id}"
    raw = await cache.get(key)
    if raw is not None:
        return _load(json.loads(raw))
    habitat = await service.tile_habitat(session, habitat_id=habitat_id)
    await cache.set(key, json.dumps(_dump(habitat)).encode(), ttl=STATE_TTL)
    return habitat


async def tile_habitats(session: AsyncSession, cache: Cache) -> list[TileHabitat]:
    raw = await cache.get(ALL_KEY)
    if raw is not None:
        return [_load(item) for item in json.loads(raw)]
    habitats = await service.tile_habitats(session)
    await cache.set(ALL_KEY, json.dumps([_dump(h) for h in habitats]).encode(), ttl=STATE_TTL)
    return habitats


async def forget(cache: Cache, *, habitat_id: int | None = None) -> None:
    """After a habitat is written: its entry (when given) and the all-habitats list."""
    if habitat_id is not None:
        await cache.delete(f"{PREFIX}{habitat_id}")
    await cache.delete(ALL_KEY)
