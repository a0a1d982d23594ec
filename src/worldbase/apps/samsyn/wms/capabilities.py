"""A WMS's capabilities described in full: service, formats and every named layer.

The document is fetched like every WMS request (`geo.wms.fetch`: the source policy on each
redirect hop and at connect time, the samsyn WMS timeout, at most `MAX_CAPABILITIES_BYTES`)
and read with OWSLib. WMS 1.3.0 is asked first; a server whose answer OWSLib cannot read
as 1.3.0 is asked again for 1.1.1. A description is kept in the cache for
`CACHE_SECONDS` (by URL); `fresh=True` asks the WMS again and replaces the cached one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from worldbase.apps.samsyn.wms import service as service_wms
from worldbase.core.cache import Cache
from worldbase.core.errors import UpstreamError, UpstreamTimeout
from worldbase.geo import wms
from worldbase.geo.raster_sources import policy
from worldbase.settings import Settings

CACHE_SECONDS = 600
CACHE_PREFIX = "samsyn-wms-capabilities:"
MAX_LIST = 500  # formats, CRS and styles kept per list (a layer's CRS list can be thousands)


def _text(value: Any) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _bounds(meta: Any) -> list[float] | None:
    box = getattr(meta, "boundingBoxWGS84", None)
    if not box:
        return None
    try:
        return [float(v) for v in box[:4]]
    except (TypeError, ValueError):
        return None


def _dimensions(meta: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name, data in (getattr(meta, "dimensions", None) or {}).items():
        values = [v.strip() for v in data.get("values") or [] if v and v.strip()]
        if name and values:
            found.append(
                {
                    "name": name,
                    "extent": ",".join(values),
                    "units": data.get("units"),
                    "default": data.get("default"),
                }
            )
    positions = getattr(meta, "timepositions", None)
    if positions and not any(d["name"].lower() == "time" for d in found):  # WMS 1.1.1
        found.append(
            {
                "name": "time",
                "extent": ",".join(p.strip() for p in positions if p and p.strip()),
                "units": "ISO8601",
                "default": getattr(meta, "defaulttimeposition", None),
            }
        )
    return found


def _layer(name: str, meta: Any) -> dict[str, Any]:
    styles = [
        {"name": style, "title": info.get("title") or style, "legendUrl": info.get("legend")}
        for style, info in (getattr(meta, "styles", None) or {}).items()
        if style
    ]
    return {
        "name": name,
        "title": _text(getattr(meta, "title", None)) or name,
        "abstract": _text(getattr(meta, "abstract", None)),
        "queryable": bool(getattr(meta, "queryable", 0)),
        "dimensions": _dimensions(meta),
        "styles": styles[:MAX_LIST],
        "bounds": _bounds(meta),
        "crs": sorted(str(c) for c in getattr(meta, "crsOptions", None) or [])[:MAX_LIST],
    }


def _formats(service: Any, operation: str) -> list[str]:
    try:
        options = service.getOperationByName(operation).formatOptions
    except (KeyError, AttributeError):
        return []
    return [str(o).strip() for o in options or [] if o][:MAX_LIST]


def describe(content: bytes, *, url: str, version: str) -> dict[str, Any]:
    """The capabilities document as SamSyn's frontend reads it (see `WmsCapabilities`)."""
    service = wms.open_service(content, url=url, version=version)
    ident = service.identification
    provider = getattr(service, "provider", None)
    contact = getattr(provider, "contact", None)
    return {
        "version": service.version or version,
        "service_title": _text(ident.title) or "",
        "service_abstract": _text(ident.abstract),
        "service_provider": _text(getattr(contact, "organization", None))
        or _text(getattr(provider, "name", None)),
        "service_contact_email": _text(getattr(contact, "email", None)),
        "service_access_constraints": _text(getattr(ident, "accessconstraints", None)),
        "service_fees": _text(getattr(ident, "fees", None)),
        "getmap_formats": _formats(service, "GetMap"),
        "getfeatureinfo_formats": _formats(service, "GetFeatureInfo"),
        "layers": [_layer(name, meta) for name, meta in service.contents.items() if name],
    }


async def _fetch(url: str, version: str, settings: Settings) -> bytes:
    params = {"SERVICE": "WMS", "REQUEST": "GetCapabilities", "VERSION": version}
    content, _ = await wms.fetch(
        service_wms.http_client(settings),
        wms.build_url(url, params),
        check_url=service_wms.url_check(settings),
        limits=service_wms.wms_limits(settings, service_wms.MAX_CAPABILITIES_BYTES),
    )
    return content


async def _described(url: str, settings: Settings) -> dict[str, Any]:
    content = await _fetch(url, "1.3.0", settings)
    try:
        return await asyncio.to_thread(describe, content, url=url, version="1.3.0")
    except UpstreamError as first:  # not readable as 1.3.0: perhaps a 1.1.1-only server
        try:
            older = await _fetch(url, "1.1.1", settings)
            return await asyncio.to_thread(describe, older, url=url, version="1.1.1")
        except (UpstreamError, UpstreamTimeout):
            raise first from None


def _key(url: str) -> str:
    return CACHE_PREFIX + hashlib.blake2b(url.encode(), digest_size=16).hexdigest()


async def read(
    url: str, *, settings: Settings, cache: Cache, fresh: bool = False
) -> dict[str, Any]:
    """The WMS's capabilities (`UpstreamError`/`UpstreamTimeout` when it cannot give them,
    `SourceNotAllowed` when the source policy refuses the URL)."""
    await asyncio.to_thread(policy(settings).check_url, url)
    if not fresh and (cached := await cache.get(_key(url))) is not None:
        result: dict[str, Any] = json.loads(cached)
        return result
    result = await _described(url, settings)
    await cache.set(_key(url), json.dumps(result).encode(), ttl=CACHE_SECONDS)
    return result
