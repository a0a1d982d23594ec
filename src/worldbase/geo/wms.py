"""A small WMS client: GetMap for one web-map tile, GetCapabilities parsed with OWSLib.

Every request goes through `fetch`, which makes upstream failures domain errors with the
upstream's reason and never lets one become a 500:

- a timeout (connect or read) is `UpstreamTimeout` (504);
- a connection error or HTTP 5xx is `Unreachable` (an `UpstreamError`, 502);
- an HTTP 4xx, an oversized body or an XML `ServiceException`
  where an image was expected is `UpstreamError` (502);
- redirects are followed by hand, at most `WmsLimits.max_redirects`, and every hop's URL is
  checked with the caller's `check_url` (the source allow-list), so an allowed WMS cannot
  bounce a request to a host that is not allowed (SSRF).

The module knows nothing about layers or settings: callers pass a `WmsSource`, the limits,
an `httpx.AsyncClient` and the URL check.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from xml.etree import ElementTree

import httpx
import morecantile

from worldbase.core.errors import BadInput, UpstreamError, UpstreamTimeout

VERSIONS = ("1.1.1", "1.3.0")
TILE_SIZES = (256, 512)
# Keys a GetMap request sets itself; the same keys in the configured URL's query are replaced.
_OWN_KEYS = {
    "service",
    "request",
    "version",
    "layers",
    "styles",
    "format",
    "transparent",
    "width",
    "height",
    "bbox",
    "srs",
    "crs",
}
# WMS 1.3.0 (Annex C): TIME and ELEVATION are sent as is, other dimensions as DIM_<name>.
_PLAIN_DIMENSIONS = {"TIME", "ELEVATION"}
_PERIODS = {
    "PT1H": "hourly",
    "P1D": "daily",
    "P7D": "weekly",
    "P1W": "weekly",
    "P1M": "monthly",
    "P1Y": "yearly",
}


class Unreachable(UpstreamError):
    """The WMS could not be reached or failed on its side (connection error, HTTP 5xx):
    unlike a wrong answer, worth asking again later."""


UrlCheck = Callable[[str], object]
"""Raises (a domain error) for a URL the deployment does not allow; the result is ignored."""


@dataclass(frozen=True)
class WmsLimits:
    timeout: float = 15.0  # seconds for each of connect, read, write, pool
    max_bytes: int = 16 * 1024 * 1024
    max_redirects: int = 3


@dataclass(frozen=True)
class WmsSource:
    """What GetMap needs of a WMS layer (`source_config` of samsyn's WMS layers)."""

    url: str
    layers: str
    version: str = "1.3.0"
    format: str = "image/png"
    transparent: bool = True
    styles: str = ""
    dimensions: Mapping[str, str] = field(default_factory=dict)
    time_parameter: str = "TIME"


@dataclass(frozen=True)
class WmsImage:
    content: bytes
    media_type: str


@dataclass(frozen=True)
class TimeExtent:
    """A layer's TIME dimension: first and last instant, step (when regular) and the raw text."""

    start: str
    end: str
    resolution: str | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class WmsLayerInfo:
    name: str
    title: str | None
    bounds: tuple[float, float, float, float] | None  # lon/lat
    time: TimeExtent | None
    dimensions: Mapping[str, Mapping[str, Any]]


# --- GetMap ----------------------------------------------------------------------------------


def tile_bbox(
    z: int, x: int, y: int, *, tms: morecantile.TileMatrixSet | None = None
) -> tuple[float, float, float, float]:
    """The tile's bounds in the tile matrix set's CRS (EPSG:3857 metres by default)."""
    matrix = tms or morecantile.tms.get("WebMercatorQuad")
    box = matrix.xy_bounds(morecantile.Tile(x=x, y=y, z=z))
    return box.left, box.bottom, box.right, box.top


def dimension_key(name: str) -> str:
    key = name.upper()
    if key in _PLAIN_DIMENSIONS or key.startswith("DIM_"):
        return key
    return f"DIM_{key}"


def getmap_params(
    source: WmsSource,
    *,
    bbox: tuple[float, float, float, float],
    width: int,
    height: int,
    crs: str = "EPSG:3857",
    time: str | None = None,
) -> dict[str, str]:
    """GetMap parameters for a bbox in `crs` (x/y order: EPSG:3857 has no axis swap)."""
    if source.version not in VERSIONS:
        raise BadInput(f"Unsupported WMS version {source.version!r}; use 1.1.1 or 1.3.0")
    params = {
        "SERVICE": "WMS",
        "REQUEST": "GetMap",
        "VERSION": source.version,
        "LAYERS": source.layers,
        "STYLES": source.styles,
        "FORMAT": source.format,
        "TRANSPARENT": "TRUE" if source.transparent else "FALSE",
        "WIDTH": str(width),
        "HEIGHT": str(height),
        "SRS" if source.version == "1.1.1" else "CRS": crs,
        "BBOX": ",".join(repr(float(v)) for v in bbox),
    }
    for name, value in source.dimensions.items():
        params[dimension_key(name)] = str(value)
    if time is not None:
        params[source.time_parameter.upper()] = time
    return params


def build_url(base: str, params: Mapping[str, str]) -> str:
    """`base` with `params` merged into its query (keys we set replace the base's, any case)."""
    parts = urlsplit(base)
    own = {k.lower() for k in params}
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in own and k.lower() not in _OWN_KEYS
    ]
    query = urlencode([*kept, *params.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


async def get_map(
    client: httpx.AsyncClient,
    source: WmsSource,
    *,
    z: int,
    x: int,
    y: int,
    tilesize: int = 256,
    time: str | None = None,
    check_url: UrlCheck,
    limits: WmsLimits | None = None,
) -> WmsImage:
    """The tile z/x/y (WebMercatorQuad) as the WMS renders it, in the layer's format."""
    if tilesize not in TILE_SIZES:
        raise BadInput(f"Tile size must be one of {TILE_SIZES}")
    params = getmap_params(
        source, bbox=tile_bbox(z, x, y), width=tilesize, height=tilesize, time=time
    )
    content, media_type = await fetch(
        client, build_url(source.url, params), check_url=check_url, limits=limits
    )
    if not media_type.startswith("image/") or _looks_like_xml(content):
        raise UpstreamError(
            f"The WMS answered GetMap without an image: {_exception_text(content, media_type)}",
            detail=_detail(source.url, reason=_exception_text(content, media_type)),
        )
    return WmsImage(content, media_type)


# --- Fetching ---------------------------------------------------------------------------------


def _origin(url: str) -> str:
    # Only scheme, host and path: a configured query may hold an API key.
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _detail(url: str, **values: Any) -> dict[str, Any]:
    return {"upstream": _origin(url), **values}


async def fetch(
    client: httpx.AsyncClient, url: str, *, check_url: UrlCheck, limits: WmsLimits | None = None
) -> tuple[bytes, str]:
    """GET `url` (redirects checked hop by hop); (body, media type) of a 2xx answer.

    `limits.timeout` bounds each connect and read; the whole exchange, redirects included,
    gets twice that (a server dripping bytes cannot hold a request for long).
    """
    limits = limits or WmsLimits()
    try:
        async with asyncio.timeout(2 * limits.timeout):
            return await _fetch(client, url, check_url=check_url, limits=limits)
    except TimeoutError:
        raise UpstreamTimeout(
            f"The WMS did not finish answering within {2 * limits.timeout:g} s",
            detail=_detail(url, reason="timeout"),
        ) from None


async def _fetch(
    client: httpx.AsyncClient, url: str, *, check_url: UrlCheck, limits: WmsLimits
) -> tuple[bytes, str]:
    timeout = httpx.Timeout(limits.timeout)
    for _ in range(limits.max_redirects + 1):
        check_url(url)
        try:
            async with client.stream(
                "GET", url, timeout=timeout, follow_redirects=False
            ) as response:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise UpstreamError(
                            "The WMS answered a redirect without a Location",
                            detail=_detail(url, upstream_status=response.status_code),
                        )
                    url = urljoin(url, location)
                    continue
                body = await _read_limited(response, url, limits.max_bytes)
        except httpx.TimeoutException:
            raise UpstreamTimeout(
                f"The WMS did not answer within {limits.timeout:g} s",
                detail=_detail(url, reason="timeout"),
            ) from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise Unreachable(
                f"The WMS could not be reached: {reason}", detail=_detail(url, reason=reason)
            ) from None
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if response.status_code >= 400:
            reason = _exception_text(body, media_type) or response.reason_phrase
            error = Unreachable if response.status_code >= 500 else UpstreamError
            raise error(
                f"The WMS answered HTTP {response.status_code}: {reason}",
                detail=_detail(url, upstream_status=response.status_code, reason=reason),
            )
        return body, media_type
    raise UpstreamError(
        f"The WMS redirected more than {limits.max_redirects} times",
        detail=_detail(url, reason="too many redirects"),
    )


async def _read_limited(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise UpstreamError(
            f"The WMS answer is larger than {max_bytes} bytes",
            detail=_detail(url, reason="too large"),
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise UpstreamError(
                f"The WMS answer is larger than {max_bytes} bytes",
                detail=_detail(url, reason="too large"),
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _looks_like_xml(content: bytes) -> bool:
    head = content[:100].lstrip()
    return head.startswith(b"<?xml") or head.startswith(b"<ServiceExceptionReport")


def _exception_text(content: bytes, media_type: str) -> str:
    """The reason a WMS gives: its ServiceException text, else the start of a text body."""
    if _looks_like_xml(content) or "xml" in media_type:
        try:
            root = ElementTree.fromstring(content)  # noqa: S314 - bounded body, no DTDs expanded
        except ElementTree.ParseError:
            pass
        else:
            texts = [
                " ".join((el.text or "").split())
                for el in root.iter()
                if el.tag.rsplit("}", 1)[-1] in ("ServiceException", "ExceptionText")
            ]
            texts = [t for t in texts if t]
            if texts:
                return "; ".join(texts)[:500]
    if media_type.startswith("image/"):
        return ""
    text = content[:2000].decode("utf-8", "replace")
    text = re.sub(r"<[^>]+>", " ", text)
    return (" ".join(text.split())[:300]) or f"{media_type or 'an unknown type'} body"


# --- GetCapabilities --------------------------------------------------------------------------


async def get_capabilities(
    client: httpx.AsyncClient,
    url: str,
    *,
    version: str = "1.3.0",
    check_url: UrlCheck,
    limits: WmsLimits | None = None,
) -> dict[str, WmsLayerInfo]:
    """Every named layer of the WMS, by name."""
    params = {"SERVICE": "WMS", "REQUEST": "GetCapabilities", "VERSION": version}
    content, _ = await fetch(client, build_url(url, params), check_url=check_url, limits=limits)
    return await asyncio.to_thread(parse_capabilities, content, url=url, version=version)


def open_service(content: bytes, *, url: str, version: str) -> Any:
    """OWSLib's `WebMapService` over a capabilities document; `UpstreamError` when the
    document is not one (a ServiceException, HTML, broken XML)."""
    from owslib.wms import WebMapService

    try:
        return WebMapService(url, version=version, xml=content)
    except Exception as exc:  # OWSLib raises ServiceException, ParseError, ValueError, ...
        reason = _exception_text(content, "text/xml") or str(exc) or type(exc).__name__
        raise UpstreamError(
            f"The WMS capabilities could not be read: {reason}",
            detail=_detail(url, reason=reason),
        ) from None


def parse_capabilities(content: bytes, *, url: str, version: str) -> dict[str, WmsLayerInfo]:
    """OWSLib's reading of a capabilities document; `UpstreamError` when it is not one."""
    service = open_service(content, url=url, version=version)
    layers: dict[str, WmsLayerInfo] = {}
    for name, meta in service.contents.items():
        if not name:
            continue
        box = getattr(meta, "boundingBoxWGS84", None)
        bounds = tuple(float(v) for v in box[:4]) if box else None
        layers[name] = WmsLayerInfo(
            name=name,
            title=getattr(meta, "title", None),
            bounds=bounds,  # type: ignore[arg-type]
            time=parse_time_extent(getattr(meta, "timepositions", None)),
            dimensions=dict(getattr(meta, "dimensions", None) or {}),
        )
    return layers


def parse_time_extent(positions: list[str] | None) -> TimeExtent | None:
    """A TIME dimension's values (`start/end/period` intervals or a list of instants)."""
    values = tuple(p.strip() for p in positions or () if p and p.strip())
    if not values:
        return None
    starts: list[str] = []
    ends: list[str] = []
    periods: set[str] = set()
    for value in values:
        parts = value.split("/")
        if len(parts) >= 2:
            starts.append(parts[0])
            ends.append(parts[1])
            if len(parts) == 3:
                periods.add(parts[2].upper())
        else:
            starts.append(value)
            ends.append(value)
    start = min(starts, key=_sort_key)
    end = max(ends, key=_sort_key)
    resolution = _PERIODS.get(next(iter(periods))) if len(periods) == 1 else None
    return TimeExtent(start=start, end=end, resolution=resolution, values=values)


def _sort_key(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            day = date.fromisoformat(text[:10])
        except ValueError:
            return datetime.min
        return datetime(day.year, day.month, day.day)
    return parsed.replace(tzinfo=None)
