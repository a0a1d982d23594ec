"""Web Mercator tile helpers: validation, bounds and ETags (`If-None-Match`).

Tiles follow the XYZ scheme (EPSG:3857, y counted from the north, as MapLibre asks).
Tile routes answer through `geo.tile_cache.serve`, which uses these.
"""

from __future__ import annotations

import hashlib
import math

from starlette.requests import Request

from worldbase.core.errors import BadInput

MAX_ZOOM = 24
# Half the width of the Web Mercator square (metres): pi * 6378137.
MERCATOR_HALF = math.pi * 6378137.0


def validate_tile(z: int, x: int, y: int, *, max_zoom: int = MAX_ZOOM) -> None:
    """Raise `BadInput` unless 0 <= z <= max_zoom and 0 <= x, y < 2**z."""
    if not 0 <= z <= max_zoom:
        raise BadInput(
            f"Tile zoom {z} is out of range: 0 to {max_zoom}",
            detail={"reason": "zoom out of range", "z": z, "max_zoom": max_zoom},
        )
    size = 1 << z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < size:
            raise BadInput(
                f"Tile {name}={value} is out of range at zoom {z}: 0 to {size - 1}",
                detail={"reason": f"{name} out of range", "z": z, name: value},
            )


def tile_bounds_mercator(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of the tile in EPSG:3857 metres."""
    span = 2 * MERCATOR_HALF / (1 << z)
    minx = -MERCATOR_HALF + x * span
    maxy = MERCATOR_HALF - y * span
    return minx, maxy - span, minx + span, maxy


def _lat(y_index: float, z: int) -> float:
    n = math.pi - 2.0 * math.pi * y_index / (1 << z)
    return math.degrees(math.atan(math.sinh(n)))


def tile_bounds_lonlat(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of the tile in degrees (EPSG:4326)."""
    size = 1 << z
    west = x / size * 360.0 - 180.0
    east = (x + 1) / size * 360.0 - 180.0
    return west, _lat(y + 1, z), east, _lat(y, z)


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(x, y) of the tile at zoom z that holds the point."""
    size = 1 << z
    lat = max(min(lat, 85.0511287798066), -85.0511287798066)
    x = int((lon + 180.0) / 360.0 * size)
    rad = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(rad)) / math.pi) / 2.0 * size)
    return min(max(x, 0), size - 1), min(max(y, 0), size - 1)


def etag_for(*parts: str | bytes) -> str:
    """A strong, quoted ETag from the parts (length-prefixed, so ("ab","c") != ("a","bc"))."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode() if isinstance(part, str) else bytes(part)
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return f'"{digest.hexdigest()}"'


def _matches(if_none_match: str, etag: str) -> bool:
    # If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ prefixes are ignored.
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        if candidate.strip().removeprefix("W/") == wanted:
            return True
    return False


def not_modified(request: Request, etag: str) -> bool:
    """True when the client already holds this version (answer 304 without rendering)."""
    header = request.headers.get("if-none-match")
    return header is not None and _matches(header, etag)
