"""Global Fishing Watch's 4Wings heatmap tiles through the server's API token (SamSyn's proxy).

A tile request is checked (z/x/y in range, a bounded query of plain parameter names), sent to
`GFW_API_URL` with the token (`GFW_API_TOKEN`) as a bearer header, and its answer cached by
the route (the tile pipeline: memory/Redis, the fast lane, `GFW_TILE_MAX_AGE`). GFW's "no
data here" (404) is an empty tile. Faults are GFW's, never the caller's: a refused token or
a bad answer is 502, no answer in `GFW_TIMEOUT` seconds 504, no token configured 503; a query
GFW rejects (400/422) is the caller's 422 with GFW's reason. The token goes only into the
`Authorization` header of the upstream request: not into a URL, an error or a log line.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from worldbase.apps.samsyn.settings import SamsynSettings
from worldbase.core.errors import (
    BadInput,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from worldbase.core.redact import redact
from worldbase.geo.tiles import validate_tile

HEATMAP_PATH = "v3/4wings/tile/heatmap"
MAX_ZOOM = 20
MAX_PARAMS = 40
MAX_VALUE_LENGTH = 1000
MAX_TILE_BYTES = 16 * 1024 * 1024
MEDIA_TYPES = {"MVT": "application/vnd.mapbox-vector-tile", "PNG": "image/png"}
_NAME = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,64}$")
TOKEN_SETTING = "GFW_API_TOKEN"  # noqa: S105 (the setting's name, not a token)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class HeatmapTile:
    z: int
    x: int
    y: int
    query: tuple[tuple[str, str], ...]  # sorted: one cache key per distinct query
    media_type: str

    @property
    def path(self) -> str:
        return f"{HEATMAP_PATH}/{self.z}/{self.x}/{self.y}"

    @property
    def query_string(self) -> str:
        return urlencode(self.query)


def configured(settings: SamsynSettings) -> bool:
    token = settings.gfw_api_token
    return token is not None and bool(token.get_secret_value().strip())


def heatmap_tile(*, z: int, x: int, y: int, query: list[tuple[str, str]]) -> HeatmapTile:
    """The tile asked for, checked; `BadInput` for a tile out of range or a strange query."""
    validate_tile(z, x, y, max_zoom=MAX_ZOOM)
    if len(query) > MAX_PARAMS:
        raise BadInput(f"At most {MAX_PARAMS} query parameters")
    for name, value in query:
        if not _NAME.match(name):
            raise BadInput(
                "Query parameter names are letters, digits and _ . - [ ]",
                detail=[{"loc": ["query", name[:64]], "msg": "bad name", "type": "value_error"}],
            )
        if len(value) > MAX_VALUE_LENGTH:
            raise BadInput(f"Query parameter {name} is longer than {MAX_VALUE_LENGTH} characters")
    fmt = dict(query).get("format", "MVT").upper()
    if fmt not in MEDIA_TYPES:
        raise BadInput("format: MVT or PNG")
    return HeatmapTile(z, x, y, tuple(sorted(query)), MEDIA_TYPES[fmt])


def _client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=10)
        client = httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False)
        _clients[loop] = client
    return client


def _reason(body: bytes, token: str) -> str:
    """GFW's own words for a rejected query (its JSON `message(s)`), short and redacted
    (the token too, should an answer ever echo it)."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    found = data.get("messages") or data.get("message") or data.get("error") or ""
    if isinstance(found, list):
        found = "; ".join(
            str(m.get("detail") or m.get("title") or m) if isinstance(m, dict) else str(m)
            for m in found[:5]
        )
    return redact(str(found).replace(token, "[redacted]"))[:300]


async def fetch(settings: SamsynSettings, tile: HeatmapTile) -> bytes:
    """The tile's bytes from GFW (b"" where GFW has none)."""
    if not configured(settings):
        raise ServiceUnavailable(
            f"Global Fishing Watch is not configured: set {TOKEN_SETTING}",
            detail={"setting": TOKEN_SETTING},
        )
    assert settings.gfw_api_token is not None
    token = settings.gfw_api_token.get_secret_value().strip()
    url = f"{settings.gfw_api_url.rstrip('/')}/{tile.path}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with _client().stream(
            "GET", url, params=tile.query, headers=headers, timeout=settings.gfw_timeout
        ) as answer:
            body = bytearray()
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > MAX_TILE_BYTES:
                    raise UpstreamError("Global Fishing Watch sent a tile too large to serve")
    except httpx.TimeoutException:
        raise UpstreamTimeout(
            f"Global Fishing Watch did not answer within {settings.gfw_timeout:g} s"
        ) from None
    except httpx.HTTPError as exc:
        raise UpstreamError(
            "Global Fishing Watch could not be reached", detail={"reason": type(exc).__name__}
        ) from None
    return _answer(answer.status_code, bytes(body), token)


def _answer(status: int, body: bytes, token: str) -> bytes:
    if status == 200:
        return body
    if status in (204, 404):
        return b""  # no activity in this tile
    if status in (400, 422):
        reason = _reason(body, token)
        raise BadInput(
            "Global Fishing Watch rejected the tile query" + (f": {reason}" if reason else ""),
            detail={"upstream_status": status},
        )
    if status in (401, 403):
        raise UpstreamError(
            f"Global Fishing Watch refused the server's API token (check {TOKEN_SETTING})",
            detail={"upstream_status": status},
        )
    raise UpstreamError(
        f"Global Fishing Watch answered HTTP {status}", detail={"upstream_status": status}
    )
