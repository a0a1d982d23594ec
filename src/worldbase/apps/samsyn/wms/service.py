"""WMS layers: their capabilities when created or updated, and their tiles.

Creating or updating a WMS layer asks the WMS for its capabilities (OWSLib): every name in
`layers` must be one of its layers (422 otherwise, listing the available ones), and
`bounds` and the `temporal` range are filled from them where the client left them out. The
URL must pass the source policy (`core.source_policy`: public addresses, or
`WORLDBASE_SOURCE_ALLOWLIST`; 403 otherwise), checked on every redirect hop and on the
address at connect time; a WMS that cannot answer makes the request fail with 502/504.

A tile is a GetMap for the tile's EPSG:3857 bounds (`geo.wms`), cached in `geo.tile_cache`
and ETagged by the layer, a digest of its `source_config` (so any configuration change
makes new tiles), z/x/y, size and time; see `get_tile` for which tiles are kept how long.
Deleting a layer drops its cached tiles. `?time=` must fall inside the layer's
temporal range (400 outside it) and is passed through as the layer's time parameter.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time as clock
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.layers.source_config import WmsConfig
from worldbase.apps.samsyn.layers.temporal import InvalidTime
from worldbase.apps.samsyn.models import Layer
from worldbase.apps.samsyn.settings import SamsynSettings
from worldbase.apps.samsyn.wms import pending
from worldbase.core import source_policy
from worldbase.core.cache import Cache
from worldbase.core.errors import BadInput, NotFound, UpstreamTimeout
from worldbase.core.storage import Storage
from worldbase.geo import wms
from worldbase.geo.raster_sources import policy
from worldbase.geo.tile_cache import TileCache, TileKey, tile_key
from worldbase.settings import Settings

# The WMS's own data change too: its tiles are fetched again after this (new cache keys).
REFRESH_SECONDS = 3600
TILE_NAMESPACE = "samsyn-wms"
TILE_MAX_AGE = 300  # Cache-Control max-age; clients revalidate with the ETag after that
MAX_TILE_BYTES = 8 * 1024 * 1024
MAX_CAPABILITIES_BYTES = 16 * 1024 * 1024
CONNECTIONS_PER_LOOP = 20

# One connection pool per event loop (connections belong to the loop that opened them) and
# source policy (its connections were checked under that policy).
_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[source_policy.SourcePolicy, httpx.AsyncClient]
] = weakref.WeakKeyDictionary()


def http_client(settings: Settings) -> httpx.AsyncClient:
    rules = policy(settings)
    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    client = clients.get(rules)
    if client is None or client.is_closed:
        limits = httpx.Limits(max_connections=CONNECTIONS_PER_LOOP, max_keepalive_connections=10)
        client = source_policy.async_client(rules, limits=limits, follow_redirects=False)
        clients[rules] = client
    return client


def url_check(settings: Settings) -> wms.UrlCheck:
    rules = policy(settings)

    def check(url: str) -> None:
        # The address is checked when the client connects (no DNS lookup per tile here).
        rules.check_url(url, resolve=False)

    return check


def wms_limits(settings: Settings, max_bytes: int) -> wms.WmsLimits:
    return wms.WmsLimits(timeout=settings.app(SamsynSettings).wms_timeout, max_bytes=max_bytes)


# --- Capabilities --------------------------------------------------------------------------


def _parses(value: str) -> bool:
    try:
        _parse_time(value)
    except BadInput:
        return False
    return True


def _filled_temporal(temporal: Any, time: wms.TimeExtent) -> Any:
    if temporal is not None and not isinstance(temporal, dict):
        return temporal  # invalid: validation reports it
    if not (_parses(time.start) and _parses(time.end)):
        return temporal  # e.g. "current" or relative periods: nothing we can check against
    filled = dict(temporal or {"enabled": True, "parameter": "TIME"})
    if filled.get("start") is None and filled.get("end") is None:
        filled["start"], filled["end"] = time.start, time.end
    if filled.get("resolution") is None and time.resolution is not None:
        filled["resolution"] = time.resolution
    return filled


async def complete_config(config: dict[str, Any], *, settings: Settings) -> dict[str, Any]:
    """`config` checked against the WMS's capabilities, with bounds and time range filled.

    A WMS that cannot be reached (connection error, HTTP 5xx, timeout) does not stop the
    save: `config` comes back marked pending (`wms.pending`). A URL the source policy
    refuses is still refused (403).

    A configuration that does not even parse is returned unchanged: the caller's
    validation names its invalid fields.
    """
    config = pending.strip(config)
    try:
        parsed = WmsConfig.model_validate({k: v for k, v in config.items() if k != "temporal"})
    except ValidationError:
        return config
    try:
        layers = await wms.get_capabilities(
            http_client(settings),
            parsed.url,
            version=parsed.version,
            check_url=url_check(settings),
            limits=wms_limits(settings, MAX_CAPABILITIES_BYTES),
        )
    except (wms.Unreachable, UpstreamTimeout) as exc:
        return pending.mark(config, exc.message)  # saved as it is, read later (`pending`)
    # A draft without layer names is only checked for its URL (policy, reachability).
    names = [name.strip() for name in (parsed.layers or "").split(",") if name.strip()]
    missing = [name for name in names if name not in layers]
    if missing:
        raise BadInput(
            f"The WMS has no layer named {', '.join(repr(n) for n in missing)}",
            detail={
                "loc": ["source_config", "layers"],
                "missing": missing,
                "available": sorted(layers)[:200],
            },
        )
    result = dict(config)
    boxes = [box for n in names if (box := layers[n].bounds) is not None]
    if not result.get("bounds") and boxes:
        result["bounds"] = [
            [max(min(b[0] for b in boxes), -180.0), max(min(b[1] for b in boxes), -90.0)],
            [min(max(b[2] for b in boxes), 180.0), min(max(b[3] for b in boxes), 90.0)],
        ]
    times = [layers[n].time for n in names if layers[n].time is not None]
    if times and times[0] is not None:
        result["temporal"] = _filled_temporal(result.get("temporal"), times[0])
    return result


# --- Tiles -----------------------------------------------------------------------------------


def _time_error(message: str, msg: str) -> BadInput:
    # The same status and shape as the GeoTIFF layers' `?time=` errors (service_temporal).
    detail = [{"loc": ["query", "time"], "msg": msg, "type": "value_error"}]
    return InvalidTime(message, detail=detail)


def _parse_time(value: str) -> datetime:
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _time_error(
            f"Invalid time {text[:40]!r}: an ISO date such as 2023-06-01 or 2023-06-01T00:00:00Z",
            "not an ISO date",
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def check_time(config: dict[str, Any], time: str) -> str:
    """`time` (passed to the WMS as given) when it lies within the layer's temporal range.

    Only the range is checked, not the steps: a WMS answers with its nearest time itself.
    Without `?time=` the WMS's default time is shown.
    """
    temporal = config.get("temporal") or {}
    if not temporal.get("enabled"):
        raise _time_error("This layer has no time dimension; leave out ?time=", "not temporal")
    when = _parse_time(time)
    start, end = temporal.get("start"), temporal.get("end")
    last = _parse_time(str(end)) if end else None
    if last is not None and len(str(end)) == 10:  # a date covers its whole day
        last = last.replace(hour=23, minute=59, second=59, microsecond=999_999)
    if (start and when < _parse_time(str(start))) or (last is not None and when > last):
        raise _time_error(
            f"time {time} is outside the layer's range {start} to {end}", "outside range"
        )
    return time.strip()


def _source(config: dict[str, Any]) -> wms.WmsSource:
    if not config.get("layers"):
        raise BadInput(
            "This WMS layer names no WMS layers yet: set source_config.layers",
            detail=[{"loc": ["source_config", "layers"], "msg": "missing", "type": "missing"}],
        )
    temporal = config.get("temporal") or {}
    return wms.WmsSource(
        url=config["url"],
        layers=config["layers"],
        version=config.get("version", "1.3.0"),
        format=config.get("format", "image/png"),
        transparent=bool(config.get("transparent", True)),
        styles=config.get("styles", ""),
        dimensions={k: str(v) for k, v in (config.get("dimensions") or {}).items()},
        time_parameter=temporal.get("parameter") or "TIME",
    )


def _digest(config: dict[str, Any]) -> str:
    data = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(data, digest_size=12).hexdigest()


@dataclass(frozen=True)
class WmsTile:
    source: wms.WmsSource
    z: int
    x: int
    y: int
    tilesize: int
    time: str | None
    media_type: str
    key: TileKey  # its `etag` answers If-None-Match before any fetch
    persist: bool  # also kept in object storage (a time slice does not change)


async def get_tile(
    session: AsyncSession,
    *,
    layer_id: uuid.UUID,
    z: int,
    x: int,
    y: int,
    tilesize: int = 256,
    time: str | None = None,
    now: float | None = None,
) -> WmsTile:
    """What tile z/x/y of the WMS layer is (cache key, ETag), before anything is fetched.

    The caller has checked that the layer exists, is readable and that z/x/y are valid.
    The key holds a digest of the whole `source_config` (a changed layer uses new keys).
    A tile at an explicit `time` is a fixed time slice: cached in both tiers. A tile
    without one shows whatever the WMS shows now: its key holds the refresh period, it
    stays in the memory/Redis tier only and is asked again every `REFRESH_SECONDS`.
    """
    config = await session.scalar(select(Layer.source_config).where(Layer.id == layer_id))
    if config is None:
        raise NotFound("Layer not found")
    if tilesize not in wms.TILE_SIZES:
        raise BadInput(f"Tile size must be one of {wms.TILE_SIZES}")
    if time is not None:
        time = check_time(config, time)
    media_type = str(config.get("format") or "image/png")
    version = _digest(config)
    if time is None:
        version += f"-{int((now if now is not None else clock.time()) // REFRESH_SECONDS)}"
    key = tile_key(
        namespace=TILE_NAMESPACE,
        layer_id=str(layer_id),
        version=version,
        params=f"time={time or ''}",
        z=z,
        x=x,
        y=y,
        fmt=media_type.rsplit("/", 1)[-1],
        scale=tilesize // 256,
    )
    return WmsTile(_source(config), z, x, y, tilesize, time, media_type, key, time is not None)


def tile_cache(tile: WmsTile, *, cache: Cache, storage: Storage) -> TileCache:
    """Where the tile is kept: both tiers for a time slice, the memory/Redis tier for
    `REFRESH_SECONDS` for what the WMS shows now (see `get_tile`)."""
    if tile.persist:
        return TileCache(cache=cache, storage=storage)
    return TileCache(cache=cache, storage=None, memory_ttl=REFRESH_SECONDS)


async def fetch(tile: WmsTile, *, settings: Settings) -> bytes:
    """The tile from the WMS (502/504 when it fails, and then nothing is cached)."""
    image = await wms.get_map(
        http_client(settings),
        tile.source,
        z=tile.z,
        x=tile.x,
        y=tile.y,
        tilesize=tile.tilesize,
        time=tile.time,
        check_url=url_check(settings),
        limits=wms_limits(settings, MAX_TILE_BYTES),
    )
    return image.content


async def forget_tiles(*, layer_id: uuid.UUID, cache: Cache, storage: Storage) -> int:
    """Drop every cached tile of the layer (both tiers); the count removed from storage."""
    tiles = TileCache(cache=cache, storage=storage)
    return await tiles.invalidate(namespace=TILE_NAMESPACE, layer_id=str(layer_id))
