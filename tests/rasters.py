"""Raster test helpers: small COGs written by the tests and an HTTP server with Range support.

`make_cog` writes a Cloud Optimized GeoTIFF (rio-cogeo, deflate, internal overviews) with
a known pattern, so tests can check pixel values. `RangeServer` serves a directory on a
loopback port with `Range: bytes=a-b` (what GDAL's /vsicurl/ sends), and `/redirect?to=`
answers a 302 (for the allow-list's redirect checks). `turn_after=n, turn_to=url` makes it a
turncoat: the first n requests are served, every later one 302s to `turn_to`; `hits` records
the paths each server was asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import rasterio
from rasterio.transform import from_bounds
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

# The North Sea box of the seed's examples.
BOUNDS = (2.0, 51.0, 8.0, 56.0)


def pattern(size: int = 256, count: int = 3) -> np.ndarray:
    """Band 1: columns 0..255 (x), band 2: rows (y), band 3: constant 100; band n>3: n*10."""
    cols = np.tile((np.arange(size) * 256 // size).astype("uint8"), (size, 1))
    bands = [cols, cols.T.copy(), np.full((size, size), 100, "uint8")]
    bands += [np.full((size, size), 10 * n, "uint8") for n in range(4, count + 1)]
    return np.stack(bands[:count])


def make_cog(
    path: Path,
    *,
    size: int = 256,
    count: int = 3,
    bounds: tuple[float, float, float, float] = BOUNDS,
    crs: str = "EPSG:4326",
    dtype: str = "uint8",
    nodata: float | None = None,
    data: np.ndarray | None = None,
) -> Path:
    """A COG at `path` (parents created); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = pattern(size, count) if data is None else data
    src = path.with_name(f".src-{path.name}")
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": dtype,
        "crs": crs,
        "transform": from_bounds(*bounds, array.shape[2], array.shape[1]),
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(src, "w", **profile) as dst:
        dst.write(array.astype(dtype))
    cog_translate(src, path, cog_profiles.get("deflate"), quiet=True, overview_level=2)
    src.unlink()
    return path


class _Handler(BaseHTTPRequestHandler):
    root: Path
    hits: list[str]
    turn_after: int | None = None
    turn_to: str = ""

    def log_message(self, *args: Any) -> None:
        return

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        parts = urlsplit(self.path)
        self.hits.append(self.path)
        turned = self.turn_after is not None and len(self.hits) > self.turn_after
        if parts.path == "/redirect" or turned:
            self.send_response(302)
            self.send_header("Location", self.turn_to or parse_qs(parts.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        file = (self.root / parts.path.lstrip("/")).resolve()
        if not file.is_relative_to(self.root) or not file.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = file.read_bytes()
        header = self.headers.get("Range")
        if header and header.startswith("bytes="):
            first_text, _, last_text = header[6:].split(",")[0].partition("-")
            first = int(first_text)
            last = min(int(last_text) if last_text else len(data) - 1, len(data) - 1)
            chunk = data[first : last + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        else:
            chunk = data
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if body:
            self.wfile.write(chunk)


@contextmanager
def range_server(
    root: Path,
    *,
    hits: list[str] | None = None,
    turn_after: int | None = None,
    turn_to: str = "",
) -> Iterator[str]:
    """Serve `root` on 127.0.0.1; yields the base URL (no trailing slash)."""
    attrs = {
        "root": root.resolve(),
        "hits": [] if hits is None else hits,
        "turn_after": turn_after,
        "turn_to": turn_to,
    }
    handler = type("Handler", (_Handler,), attrs)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
