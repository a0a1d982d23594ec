"""GeoTIFF layers: the layer's raster source (a file or a time step of a template), its
render defaults and its cache version. The rendering itself is `worldbase.geo.raster`.

The tile paths (these and the vector tiles) load no ORM object: one statement for the
layer's type, configuration and ownership (a second only for layers neither global nor the
caller's, to look through maps).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.access import can_read_layer_fields
from worldbase.apps.samsyn.exceptions import NotARasterLayer
from worldbase.apps.samsyn.layers.temporal import InvalidTime, Timeline, fill_template, iso
from worldbase.apps.samsyn.models import Layer, SourceType
from worldbase.core.cache import Cache
from worldbase.core.db import fetch_row
from worldbase.core.errors import BadInput, DomainError, NotFound, UpstreamError
from worldbase.core.models import User
from worldbase.core.storage import Storage
from worldbase.geo.raster import STORAGE_SCHEME, RenderParams, RenderQuery, check_source_allowed
from worldbase.geo.tile_cache import TileCache
from worldbase.settings import Settings

T = TypeVar("T")

NAMESPACE = "samsyn"
# The app's own objects in storage (uploaded COGs, the seeded demo): the only storage://
# sources a layer may read (`geo.raster_sources.check_source_allowed`).
OWN_STORAGE = "samsyn/"


@dataclass(frozen=True)
class RasterLayer:
    id: uuid.UUID
    name: str
    source_type: SourceType
    config: dict[str, Any]
    version: str  # changes with the configuration: part of every tile's cache key
    is_global: bool = False  # library layers' tiles may sit in shared caches (CDNs)

    @property
    def timeline(self) -> Timeline | None:
        return Timeline.of(self.config)

    @property
    def delivery(self) -> str:
        return str(self.config.get("delivery") or "tiles")


def config_version(config: dict[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class _Row:
    layer: RasterLayer
    is_global: bool
    created_by: uuid.UUID


# Raw (`core.db.fetch_row`): the tile and feature-page routes read it first, and through the
# driver it costs one round trip, no `BEGIN` or `ROLLBACK` and no SQLAlchemy execution.
_LAYER_ROW = (
    "SELECT source_type, source_config, is_global, created_by, name FROM layers WHERE id = $1"
)


async def _row(session: AsyncSession, layer_id: uuid.UUID) -> _Row:
    row = await fetch_row(session, _LAYER_ROW, layer_id)
    if row is None:
        raise NotFound("Layer not found")
    source_type, config, is_global, created_by, name = row
    config = (json.loads(config) if isinstance(config, str) else config) or {}
    layer = RasterLayer(
        layer_id, name, SourceType(source_type), config, config_version(config), bool(is_global)
    )
    return _Row(layer, bool(is_global), uuid.UUID(str(created_by)))


async def get_or_raise(
    session: AsyncSession, *, layer_id: uuid.UUID, user: User | None
) -> RasterLayer:
    """The layer (any type) with its configuration; `NotFound` when missing or unreadable."""
    row = await _row(session, layer_id)
    readable = await can_read_layer_fields(
        session, layer_id=layer_id, is_global=row.is_global, created_by=row.created_by, user=user
    )
    if not readable:
        raise NotFound("Layer not found")
    return row.layer


def require_geotiff(layer: RasterLayer) -> None:
    if layer.source_type != SourceType.geotiff:
        raise NotARasterLayer(
            f"This is a {layer.source_type.value} layer: raster services are for GeoTIFF layers",
            detail={"source_type": layer.source_type.value},
        )


@dataclass(frozen=True)
class Source:
    url: str
    time: datetime | None

    @property
    def time_iso(self) -> str | None:
        return None if self.time is None else iso(self.time)


def source(layer: RasterLayer, *, time: str | None) -> Source:
    """The COG of the layer (at `time` for temporal layers: the last step when None)."""
    config = layer.config
    template = config.get("cogUrlTemplate") or config.get("urlTemplate")
    timeline = layer.timeline
    if template and timeline is not None:
        moment = timeline.resolve(time)
        return Source(fill_template(template, moment), moment)
    if time:
        raise InvalidTime(
            "This layer has no time dimension: leave out 'time'",
            detail=[
                {"loc": ["query", "time"], "msg": "not a temporal layer", "type": "value_error"}
            ],
        )
    url = config.get("cogUrl") or config.get("url")
    if not url:
        raise BadInput("This layer's source_config names no COG")
    return Source(str(url), None)


async def read(src: Source, pending: Awaitable[T]) -> T:
    """`pending` (a read of `src`), its failures phrased for the layer's callers: a missing
    time step names the time, and no error names a server path."""
    try:
        return await pending
    except DomainError as exc:
        raise _source_error(src, exc) from None


def _source_error(src: Source, exc: DomainError) -> DomainError:
    detail = exc.detail if isinstance(exc.detail, dict) else None
    if detail is None or "source" not in detail:
        return exc  # not about the file (a point outside the raster, a bad band...)
    missing = isinstance(exc, NotFound) or (
        isinstance(exc, UpstreamError) and detail.get("status") in (403, 404, 410)
    )
    if src.time is not None and missing:
        return NotFound(
            f"This layer has no raster for time {src.time_iso}",
            detail={"time": src.time_iso, "reason": "the time step's file is missing"},
        )
    if not src.url.startswith(("http://", "https://", "s3://")):
        # A local path or a storage:// object: the server's own layout stays inside.
        exc.detail = {k: v for k, v in detail.items() if k != "source"} | {"time": src.time_iso}
    return exc


def render_params(layer: RasterLayer, query: RenderQuery) -> RenderParams:
    """The layer's `tileParams` as defaults, the request's parameters over them."""
    defaults = layer.config.get("tileParams") or {}
    return query.params(defaults if isinstance(defaults, dict) else {})


def _storage_urls(config: dict[str, Any]) -> set[str]:
    return {
        str(config[key])
        for key in ("url", "cogUrl")
        if str(config.get(key) or "").startswith(STORAGE_SCHEME)
    }


def check_sources(
    config: dict[str, Any], settings: Settings, *, previous: dict[str, Any] | None = None
) -> None:
    """Every COG a GeoTIFF config from a client names must be allowed (create and update).

    `storage://` is set only by the upload service (the layer's own COG): a client may keep
    the one the layer already has (`previous`), never name another object.
    """
    kept = _storage_urls(previous or {})
    for key in ("url", "cogUrl"):
        value = config.get(key)
        if value and str(value) not in kept:
            check_source_allowed(str(value), settings)
    template = config.get("cogUrlTemplate") or config.get("urlTemplate")
    if template:
        # The policy applies to every step: the part before the first placeholder too.
        check_source_allowed(fill_template(str(template), datetime(2000, 1, 1)), settings)
        check_source_allowed(str(template).split("{", 1)[0] + "x", settings)


# --- The registered sources (SamSyn's `/titiler` reads only these) ----------------------------

DIRECT_KEYS = ("url", "cogUrl", "cog_url")
TEMPLATE_KEYS = ("cogUrlTemplate", "urlTemplate", "cog_url_template")
_TEMPLATE_PARTS = {
    "year": r"\d{4}", "YYYY": r"\d{4}", "month": r"\d{2}", "MM": r"\d{2}", "day": r"\d{2}",
    "DD": r"\d{2}", "YYYYMM": r"\d{6}", "YYYYMMDD": r"\d{8}", "time": r"[0-9TZ:.+-]{4,40}",
    "z": r"\d{1,2}", "x": r"\d{1,8}", "y": r"\d{1,8}",
}  # fmt: skip
_TEMPLATE_FIELD = re.compile(r"\\\{(" + "|".join(_TEMPLATE_PARTS) + r")\\\}")


def normalize_url(url: str) -> str:
    """One spelling of a URL: scheme and host lower-cased, no trailing slash or fragment,
    query parameters sorted (so `https://EX.org/a.tif/` names `https://ex.org/a.tif`)."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") if len(parts.path) > 1 else parts.path
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, query, ""))


def _template_matches(template: str, url: str) -> bool:
    pattern = _TEMPLATE_FIELD.sub(lambda m: _TEMPLATE_PARTS[m[1]], re.escape(template))
    return re.fullmatch(pattern, url) is not None


async def registered_source(session: AsyncSession, *, url: str) -> str | None:
    """The COG to read for `url` when a GeoTIFF layer names it — as its file (`url`,
    `cogUrl`: the layer's own spelling is read) or as one step of its URL template — else
    None. Compared as given and normalized (`normalize_url`)."""
    spellings = (url, normalize_url(url))
    geotiff = Layer.source_type == SourceType.geotiff
    direct = select(Layer.source_config).where(
        geotiff, or_(*(Layer.source_config[key].as_string().in_(spellings) for key in DIRECT_KEYS))
    )
    for (config,) in await session.execute(direct.limit(1)):
        return next(str(config[k]) for k in DIRECT_KEYS if config.get(k) in spellings)
    templated = select(Layer.source_config).where(
        geotiff, or_(*(Layer.source_config[key].as_string().is_not(None) for key in TEMPLATE_KEYS))
    )
    for (config,) in await session.execute(templated):
        templates = [str(config[k]) for k in TEMPLATE_KEYS if isinstance(config.get(k), str)]
        for spelling in spellings:
            if any(_template_matches(t, spelling) for t in templates):
                return spelling
    return None


async def direct_url(layer: RasterLayer, src: Source, storage: Storage) -> str | None:
    """A URL a client can read the COG from (`delivery: direct`): http(s) as configured,
    a presigned URL for objects in Worldbase's storage where the backend gives one."""
    if src.url.startswith(("http://", "https://")):
        return src.url
    if src.url.startswith(STORAGE_SCHEME):
        return await storage.url(src.url[len(STORAGE_SCHEME) :])
    return None


async def forget_tiles(*, layer_id: uuid.UUID, cache: Cache, storage: Storage) -> int:
    """Drop every cached tile of a GeoTIFF layer, all config versions, in both tiers (new
    versions never read old tiles anyway: this frees the space); the count removed from
    storage."""
    tiles = TileCache(cache=cache, storage=storage)
    return await tiles.invalidate(namespace=NAMESPACE, layer_id=str(layer_id))
