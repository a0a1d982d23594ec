"""GetFeatureInfo through the server: what a WMS says is at a pixel, and which properties a
layer's features have (a sample GetFeatureInfo at the middle of the layer's bounds).

Requests go out like every WMS request (`geo.wms.fetch`: the source policy on every hop,
the samsyn WMS timeout, at most `MAX_BYTES`). The bounding box is in EPSG:4326, given as
west,south,east,north; WMS 1.3.0 wants it latitude first, which is done here.

An answer is returned the way SamSyn's frontend reads it: JSON as the WMS sent it, an HTML
table as `{"features": [{"type": "Feature", "properties": {...}}]}`, anything else as
`{"type": "text", "content": ...}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from worldbase.apps.samsyn.wms import service as service_wms
from worldbase.core.errors import BadInput, UpstreamError, UpstreamTimeout
from worldbase.geo import wms

MAX_BYTES = 4 * 1024 * 1024
SAMPLE_DEGREES = 10.0  # half the side of the box sampled by `discover_properties`
MAX_TEXT = 200_000  # characters of a text answer passed on


@dataclass(frozen=True)
class FeatureInfoQuery:
    url: str
    layers: str
    bbox: tuple[float, float, float, float]  # west, south, east, north (EPSG:4326)
    width: int
    height: int
    x: int
    y: int
    info_format: str = "text/html"
    version: str = "1.3.0"
    time: str | None = None
    cql_filter: str | None = None


def parse_bbox(text: str, *, name: str = "bbox") -> tuple[float, float, float, float]:
    """`west,south,east,north` in degrees; `BadInput` naming the parameter otherwise."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    ok = len(values) == 4 and all(abs(v) <= 360 for v in values)
    if not ok or values[0] > values[2] or values[1] > values[3]:
        raise BadInput(
            f"{name} must be west,south,east,north in degrees",
            detail=[{"loc": ["query", name], "msg": "not a bounding box", "type": "value_error"}],
        )
    return values[0], values[1], values[2], values[3]


def params(query: FeatureInfoQuery) -> dict[str, str]:
    west, south, east, north = query.bbox
    old = query.version == "1.1.1"
    box = (west, south, east, north) if old else (south, west, north, east)
    result = {
        "SERVICE": "WMS",
        "VERSION": query.version,
        "REQUEST": "GetFeatureInfo",
        "LAYERS": query.layers,
        "QUERY_LAYERS": query.layers,
        "STYLES": "",
        "INFO_FORMAT": query.info_format,
        "SRS" if old else "CRS": "EPSG:4326",
        "BBOX": ",".join(repr(v) for v in box),
        "WIDTH": str(query.width),
        "HEIGHT": str(query.height),
        "X" if old else "I": str(query.x),
        "Y" if old else "J": str(query.y),
    }
    if query.time:
        result["TIME"] = query.time
    if query.cql_filter:
        result["CQL_FILTER"] = query.cql_filter
    return result


class _Table(HTMLParser):
    """Header cells and data rows of the HTML tables in a GetFeatureInfo answer."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            if tag == "th":
                if text:
                    self.headers.append(text)
            elif self._row is not None:
                self._row.append(text)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_features(text: str) -> list[dict[str, Any]]:
    table = _Table()
    table.feed(text)
    table.close()
    return [
        {"type": "Feature", "properties": dict(zip(table.headers, row, strict=True))}
        for row in table.rows
        if table.headers and len(row) == len(table.headers)
    ]


def shaped(content: bytes, media_type: str) -> dict[str, Any]:
    text = content.decode("utf-8", "replace")
    if "json" in media_type:
        try:
            data = json.loads(text)
        except ValueError:
            return {"raw": text[:MAX_TEXT]}
        return data if isinstance(data, dict) else {"raw": text[:MAX_TEXT]}
    if "html" in media_type:
        return {"features": html_features(text)}
    return {"type": "text", "content": text[:MAX_TEXT]}


async def get(query: FeatureInfoQuery, *, settings: Any) -> dict[str, Any]:
    """The WMS's answer for the pixel (502/504 when it fails, 403 for a refused URL)."""
    if not (0 <= query.x < query.width and 0 <= query.y < query.height):
        raise BadInput("x and y must lie inside width and height")
    content, media_type = await wms.fetch(
        service_wms.http_client(settings),
        wms.build_url(query.url, params(query)),
        check_url=service_wms.url_check(settings),
        limits=service_wms.wms_limits(settings, MAX_BYTES),
    )
    return shaped(content, media_type)


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "unknown"


def sample_query(url: str, layer: str, bounds: str | None, version: str) -> FeatureInfoQuery:
    west, south, east, north = parse_bbox(bounds, name="bounds") if bounds else (0, 0, 0, 0)
    lon, lat = (west + east) / 2, (south + north) / 2
    box = (
        lon - SAMPLE_DEGREES,
        max(-85.0, lat - SAMPLE_DEGREES),
        lon + SAMPLE_DEGREES,
        min(85.0, lat + SAMPLE_DEGREES),
    )
    return FeatureInfoQuery(url, layer, box, 256, 256, 128, 128, "application/json", version)


async def discover_properties(query: FeatureInfoQuery, *, settings: Any) -> dict[str, Any]:
    """The properties of the first feature at the sample point, with a sample value each.

    Best effort, as SamSyn's frontend expects: a WMS that fails gives no properties and an
    `error`; a URL the source policy refuses is still refused (403).
    """
    try:
        answer = await get(query, settings=settings)
    except (UpstreamError, UpstreamTimeout) as exc:
        return {
            "properties": [],
            "error": exc.message,
            "message": "Could not discover properties: the layer may not support "
            "GetFeatureInfo or has no data at the sample location.",
        }
    features = answer.get("features") or []
    first = features[0] if isinstance(features, list) and features else {}
    props = first.get("properties") if isinstance(first, dict) else None
    found = [
        {"name": str(k), "sampleValue": None if v is None else str(v)[:500], "type": _kind(v)}
        for k, v in (props if isinstance(props, dict) else {}).items()
        if not str(k).startswith("_") and k != "geometry"
    ]
    message = (
        f"Discovered {len(found)} properties"
        if found
        else "No properties found at the sample location; add the layer and click on data."
    )
    return {"properties": found, "message": message}
