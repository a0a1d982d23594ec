"""The tile pipeline (`serve`) and its two-tier tile cache: the core cache (memory or Redis)
in front of object storage.

Tier 1 is `worldbase.core.cache` (fast, bounded, per-key TTL). Tier 2 is object storage
under `tiles/` (survives restarts, shared by every worker); a tier-2 hit is copied back
into tier 1. Writes to tier 2 happen in the background, after the response is on its way.

A tile's key is built from everything the tile depends on — the namespace (app), the
layer (or source) id, the layer's config version, every render parameter, the tile matrix
set, z/x/y, scale and format — so a changed layer config simply uses new keys. The ETag is
derived from the same parts, so `If-None-Match` can be answered before any lookup.
Empty tiles (outside a raster) are cached too, as empty bytes (routes answer 204).
With `persist="second-hit"` a tile reaches tier 2 only when asked for a second time.

    tiles = TileCache(cache=services.cache, storage=services.storage)
    key = tile_key(namespace="samsyn", layer_id=str(layer.id), version=version,
                   params=params.cache_key(), z=z, x=x, y=y, fmt="png")
    return await serve(request, key, render, CachePolicy(max_age=300), tiles=tiles,
                       media_type="image/png")
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from worldbase.core.cache import Cache
from worldbase.core.errors import NotFound
from worldbase.core.fast_lane import CachePolicy
from worldbase.core.services import services_of
from worldbase.core.storage import Storage
from worldbase.geo.tiles import etag_for, not_modified

log = logging.getLogger("worldbase.tiles")

PREFIX = "tiles"
MEMORY_TTL = 24 * 3600
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# Background writes to tier 2: strong references so tasks are not collected mid-flight.
_PENDING: set[asyncio.Task[None]] = set()
# Keys this process already wrote to tier 2 on a second hit (bounded, oldest dropped).
_PERSISTED: OrderedDict[str, None] = OrderedDict()
MAX_PERSISTED = 100_000

Render = Callable[[], Awaitable[bytes]]  # a tile's bytes, b"" for an empty tile


def _segment(text: str) -> str:
    """A storage-key-safe form of an id or name (other characters become '_')."""
    cleaned = _SAFE.sub("_", text).strip("._") or "_"
    return cleaned[:100]


@dataclass(frozen=True)
class TileKey:
    namespace: str
    layer_id: str
    version: str
    path: str  # "<tms>/<z>/<x>/<y>@<scale>x-<params digest>.<fmt>"
    etag: str

    @property
    def layer_prefix(self) -> str:
        return f"{PREFIX}/{_segment(self.namespace)}/{_segment(self.layer_id)}/"

    @property
    def storage_key(self) -> str:
        return f"{self.layer_prefix}{_segment(self.version)}/{self.path}"

    @property
    def memory_key(self) -> str:
        return self.storage_key


@dataclass(frozen=True)
class CachedTile:
    content: bytes  # b"" for an empty tile
    media_type: str
    etag: str
    hit: str | None  # "memory", "storage" or None (rendered now)


def tile_key(
    *,
    namespace: str,
    layer_id: str,
    version: str,
    params: str,
    z: int,
    x: int,
    y: int,
    fmt: str,
    tms: str = "WebMercatorQuad",
    scale: int = 1,
) -> TileKey:
    """The key and ETag of one tile; `params` is the canonical render-parameter string."""
    digest = hashlib.blake2b(params.encode(), digest_size=10).hexdigest()
    path = f"{_segment(tms)}/{z}/{x}/{y}@{scale}x-{digest}.{_segment(fmt)}"
    etag = etag_for(namespace, layer_id, version, params, tms, f"{z}/{x}/{y}@{scale}", fmt)
    return TileKey(namespace, layer_id, version, path, etag)


class TileCache:
    """Tier 1 (`cache`) over tier 2 (`storage`, optional: `None` keeps tiles in tier 1 only)."""

    def __init__(
        self, *, cache: Cache, storage: Storage | None, memory_ttl: int = MEMORY_TTL
    ) -> None:
        self.cache = cache
        self.storage = storage
        self.memory_ttl = memory_ttl

    key = staticmethod(tile_key)

    async def get(self, key: TileKey) -> tuple[bytes, str] | None:
        """(content, tier) or None."""
        content = await self.cache.get(key.memory_key)
        if content is not None:
            return content, "memory"
        if self.storage is None:
            return None
        try:
            content = await self.storage.get(key.storage_key)
        except NotFound:
            return None
        except Exception:  # a broken tier 2 must not break tiles
            log.warning("tile storage read failed", extra={"key": key.storage_key}, exc_info=True)
            return None
        await self.cache.set(key.memory_key, content, ttl=self.memory_ttl)
        return content, "storage"

    async def set(self, key: TileKey, content: bytes, *, media_type: str) -> None:
        await self.cache.set(key.memory_key, content, ttl=self.memory_ttl)
        if self.storage is not None:
            task = asyncio.create_task(self._persist(key, content, media_type))
            _PENDING.add(task)
            task.add_done_callback(_PENDING.discard)

    async def _persist(self, key: TileKey, content: bytes, media_type: str) -> None:
        assert self.storage is not None
        try:
            await self.storage.put(key.storage_key, content, content_type=media_type)
        except Exception:
            log.warning("tile storage write failed", extra={"key": key.storage_key}, exc_info=True)

    async def get_or_render(
        self,
        key: TileKey,
        *,
        media_type: str,
        render: Render,
        persist: str = "always",
    ) -> CachedTile:
        """The cached tile, or `render()` cached now. `persist="second-hit"` writes a tile
        to tier 2 only when it is asked for again (from tier 1): most tiles of a dynamic
        layer are seen once, and writing each costs more than rendering it again."""
        found = await self.get(key)
        if found is not None:
            if persist == "second-hit" and found[1] == "memory":
                self._persist_once(key, found[0], media_type)
            return CachedTile(found[0], media_type, key.etag, found[1])
        content = await render()
        if persist == "second-hit":
            await self.cache.set(key.memory_key, content, ttl=self.memory_ttl)
        else:
            await self.set(key, content, media_type=media_type)
        return CachedTile(content, media_type, key.etag, None)

    def _persist_once(self, key: TileKey, content: bytes, media_type: str) -> None:
        if self.storage is None or key.storage_key in _PERSISTED:
            return
        _PERSISTED[key.storage_key] = None
        while len(_PERSISTED) > MAX_PERSISTED:
            _PERSISTED.popitem(last=False)
        task = asyncio.create_task(self._persist(key, content, media_type))
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)

    async def invalidate(self, *, namespace: str, layer_id: str) -> int:
        """Drop every cached tile of a layer, all versions (both tiers); returns tier-2 count."""
        prefix = f"{PREFIX}/{_segment(namespace)}/{_segment(layer_id)}/"
        await self.cache.delete_prefix(prefix)
        for stale in [k for k in _PERSISTED if k.startswith(prefix)]:
            _PERSISTED.pop(stale, None)
        if self.storage is None:
            return 0
        keys = [obj.key async for obj in self.storage.list(prefix)]
        for item in keys:
            await self.storage.delete(item)
        return len(keys)


async def flush_pending() -> None:
    """Wait for background tier-2 writes (tests, shutdown)."""
    while _PENDING:
        await asyncio.gather(*list(_PENDING), return_exceptions=True)


async def serve(
    request: Request,
    key: TileKey,
    render: Render,
    policy: CachePolicy,
    *,
    media_type: str,
    tiles: TileCache | None,
    persist: str = "always",
) -> Response:
    """Every tile route's answer: 304 when `If-None-Match` holds the key's ETag (nothing is
    looked up or rendered), else the tile from `tiles` (rendered and kept there on a miss;
    `tiles=None` renders every time), 204 for an empty tile (MapLibre, like Martin, takes
    it as empty without decoding a body). Headers: the ETag, `X-Tile-Cache` (`client`,
    `memory`, `storage` or `miss`) and what `policy` says (Cache-Control, the fast lane)."""
    if not_modified(request, key.etag):
        response, hit = Response(status_code=304), "client"
    else:
        if tiles is None:
            content, hit = await render(), "miss"
        else:
            found = await tiles.get_or_render(
                key, media_type=media_type, render=render, persist=persist
            )
            content, hit = found.content, found.hit or "miss"
        response = (
            Response(content, media_type=media_type) if content else Response(status_code=204)
        )
    response.headers["ETag"] = key.etag
    response.headers["X-Tile-Cache"] = hit
    return policy.apply(request, response)


async def get_tile_cache(request: HTTPConnection) -> TileCache:
    services = services_of(request)
    return TileCache(cache=services.cache, storage=services.storage)


TileCacheDep = Annotated[TileCache, Depends(get_tile_cache)]
