"""What habitat tiles depend on, kept in the core cache so a cached tile costs no query.

A tile request needs the habitat's colour, raster class and `updated_at` (its cache key)
and a signed-in caller. Both answers are cached (memory, or Redis when configured, so
every worker sees the same): `habitats:tile:<id>` and `habitats:tile:all` until a habitat
is written through the API (the routes call `forget`; other writers show within
`STATE_TTL`), verified tokens for `TOKEN_TTL` seconds at most (never past their `exp`).
A disabled account or a deleted user keeps tile access for at most that long; every other
endpoint checks the account on each request.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.habitats import service
from worldbase.apps.habitats.service import TileHabitat
from worldbase.core.auth import authenticate_token
from worldbase.core.cache import Cache
from worldbase.settings import Settings

PREFIX = "habitats:tile:"
ALL_KEY = PREFIX + "all"
TOKEN_PREFIX = "habitats:token:"  # noqa: S105 - a cache key prefix, not a secret
# Writes through the API forget entries at once; writes from elsewhere (`worldbase import`)
# show on tiles within this many seconds.
STATE_TTL = 60
TOKEN_TTL = 30


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


async def check_token(
    session: AsyncSession, cache: Cache, *, token: str, settings: Settings
) -> None:
    """`NotAuthenticated`/`Forbidden` unless the token stands for an active user (cached)."""
    key = TOKEN_PREFIX + hashlib.blake2b(token.encode(), digest_size=20).hexdigest()
    if await cache.get(key) is not None:
        return
    await authenticate_token(session, token=token, settings=settings)
    ttl = TOKEN_TTL
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        exp = None
    if isinstance(exp, int | float):
        ttl = min(ttl, int(exp - time.time()))
    if ttl > 0:
        await cache.set(key, b"1", ttl=ttl)
