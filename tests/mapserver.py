"""A real WMS on loopback for the WMS tests: MapServer (Debian's `mapserv`) run as CGI by a
small threaded HTTP server, serving GeoTIFFs made here, plus misbehaving endpoints.

The WMS layer `quads` covers lon 0..20, lat 40..60 in four coloured quadrants (NW `color`
of the time step, NE green, SW yellow, SE blue) and has a TIME dimension with two steps
(a tile index): 2024-01-01 paints the NW quadrant red, 2024-02-01 magenta.

Paths: `/wms` (MapServer), `/slow` (answers after `SLOW_SECONDS`), `/error` (HTTP 500),
`/exception` (a ServiceException XML with status 200), `/html` (a text page),
`/redirect?to=URL` (302, keeping the rest of the query), `/loop` (302 to itself), `/big`
(an image larger than any sane tile), `/drip` (an image a byte every 0.1 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np

from tests.conftest import service_missing

RED = (255, 0, 0)
MAGENTA = (255, 0, 255)
GREEN = (0, 255, 0)
YELLOW = (255, 255, 0)
BLUE = (0, 0, 255)
BOUNDS = (0.0, 40.0, 20.0, 60.0)
TIMES = {"2024-01-01": RED, "2024-02-01": MAGENTA}
SLOW_SECONDS = 30.0
EXCEPTION_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc">\n'
    b'  <ServiceException code="LayerNotDefined">msWMSLoadGetMapParams(): '
    b"Invalid layer(s) given in the LAYERS parameter.</ServiceException>\n"
    b"</ServiceExceptionReport>\n"
)


def quadrant_tiff(path: Path, nw: tuple[int, int, int], *, crs: str = "EPSG:4326") -> Path:
    """A 200x200 RGB GeoTIFF over BOUNDS: NW `nw`, NE green, SW yellow, SE blue."""
    import rasterio
    from rasterio.transform import from_bounds

    data = np.zeros((3, 200, 200), dtype="uint8")
    for rows, cols, colour in (
        (slice(0, 100), slice(0, 100), nw),
        (slice(0, 100), slice(100, 200), GREEN),
        (slice(100, 200), slice(0, 100), YELLOW),
        (slice(100, 200), slice(100, 200), BLUE),
    ):
        data[:, rows, cols] = np.array(colour, dtype="uint8")[:, None, None]
    transform = from_bounds(*BOUNDS, 200, 200)
    profile = {"driver": "GTiff", "width": 200, "height": 200, "count": 3, "dtype": "uint8"}
    with rasterio.open(path, "w", crs=crs, transform=transform, **profile) as dst:
        dst.write(data)
    return path


MAPFILE = """MAP
  NAME "worldbase_test"
  EXTENT -180 -90 180 90
  SIZE 256 256
  PROJECTION "init=epsg:4326" END
  IMAGETYPE png
  OUTPUTFORMAT
    NAME "png"
    DRIVER AGG/PNG
    MIMETYPE "image/png"
    IMAGEMODE RGBA
    EXTENSION "png"
  END
  WEB
    METADATA
      "wms_title" "Worldbase test WMS"
      "wms_onlineresource" "{url}?"
      "wms_srs" "EPSG:4326 EPSG:3857"
      "wms_enable_request" "*"
    END
  END
  LAYER
    NAME "tindex"
    TYPE POLYGON
    STATUS OFF
    CONNECTIONTYPE OGR
    CONNECTION "{index}"
    PROJECTION "init=epsg:4326" END
    METADATA
      "wms_enable_request" "!*"
    END
  END
  LAYER
    NAME "quads"
    TYPE RASTER
    STATUS ON
    TILEINDEX "tindex"
    TILEITEM "location"
    PROJECTION "init=epsg:4326" END
    METADATA
      "wms_title" "Quadrants"
      "wms_extent" "0 40 20 60"
      "wms_timeextent" "2024-01-01/2024-02-01/P1M"
      "wms_timeitem" "time"
      "wms_timedefault" "2024-01-01"
      "wms_srs" "EPSG:4326 EPSG:3857"
    END
  END
END
"""


def _mapserv() -> str | None:
    for candidate in (shutil.which("mapserv"), "/usr/lib/cgi-bin/mapserv"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@dataclass
class WmsServer:
    base: str  # http://127.0.0.1:PORT
    requests: list[str] = field(default_factory=list)  # every request's path and query

    def getmaps(self) -> int:
        return sum("REQUEST=GetMap" in r for r in self.requests)

    @property
    def url(self) -> str:
        return f"{self.base}/wms"


def _handler(
    mapserv: str, config: Path, stop: threading.Event, seen: list[str]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            # A client that gave up (the timeout tests) has closed the connection.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        def do_GET(self) -> None:
            seen.append(self.path)
            parts = urlsplit(self.path)
            if parts.path == "/wms":
                self._mapserver(parts.query)
            elif parts.path == "/slow":
                stop.wait(SLOW_SECONDS)
                self._send(200, b"late", "text/plain")
            elif parts.path == "/error":
                self._send(500, b"<h1>Internal failure of the map backend</h1>", "text/html")
            elif parts.path == "/exception":
                self._send(200, EXCEPTION_XML, "application/vnd.ogc.se_xml")
            elif parts.path == "/html":
                self._send(200, b"<html><body>Maintenance until noon</body></html>", "text/html")
            elif parts.path == "/redirect":
                # To `to`, keeping the rest of the query (the WMS parameters).
                query = parse_qs(parts.query, keep_blank_values=True)
                target = query.pop("to", ["/wms"])[0]
                rest = urlencode(query, doseq=True)
                self._send(302, b"", "text/plain", Location=f"{target}?{rest}")
            elif parts.path == "/loop":
                self._send(302, b"", "text/plain", Location="/loop")
            elif parts.path == "/drip":
                self._drip()
            elif parts.path == "/big":
                self._send(200, b"\x89PNG" + b"\0" * (20 * 1024 * 1024), "image/png")
            else:
                self._send(404, b"not here", "text/plain")

        def _drip(self) -> None:
            # A byte every 0.1 s: never idle long enough for a read timeout.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "600")
                self.end_headers()
                for _ in range(600):
                    if stop.wait(0.1):
                        return
                    self.wfile.write(b"\0")
                    self.wfile.flush()

        def _mapserver(self, query: str) -> None:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "MAPSERVER_CONFIG_FILE": str(config),
                "REQUEST_METHOD": "GET",
                "QUERY_STRING": query,
                "SERVER_NAME": "127.0.0.1",
            }
            out = subprocess.run(
                [mapserv], env=env, capture_output=True, timeout=60, check=False
            ).stdout
            head, _, body = out.partition(b"\r\n\r\n")
            status, content_type = 200, "application/octet-stream"
            for line in head.decode("latin-1").splitlines():
                key, _, value = line.partition(":")
                if key.lower() == "content-type":
                    content_type = value.strip()
                elif key.lower() == "status":
                    status = int(value.split()[0])
            self._send(status, body, content_type)

    return Handler


def start_wms(tmp: Path) -> Iterator[WmsServer]:
    mapserv = _mapserv()
    if mapserv is None:
        service_missing("MapServer (`mapserv`, Debian cgi-mapserver/mapserver-bin)")
    assert mapserv is not None
    features = []
    for time, colour in TIMES.items():
        path = quadrant_tiff(tmp / f"quads-{time}.tif", colour)
        ring = [[0, 40], [20, 40], [20, 60], [0, 60], [0, 40]]
        features.append(
            {
                "type": "Feature",
                "properties": {"location": str(path), "time": time},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    index = tmp / "index.geojson"
    index.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    stop = threading.Event()
    seen: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(mapserv, tmp / "ms.conf", stop, seen))
    server.daemon_threads = True
    server.block_on_close = False
    base = f"http://127.0.0.1:{server.server_address[1]}"
    mapfile = tmp / "test.map"
    mapfile.write_text(MAPFILE.format(url=f"{base}/wms", index=index))
    (tmp / "ms.conf").write_text(f'CONFIG\n  ENV\n    MS_MAPFILE "{mapfile}"\n  END\nEND\n')
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WmsServer(base, seen)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def pixel(png: bytes, x: int, y: int) -> tuple[int, ...]:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return tuple(image.convert("RGBA").getpixel((x, y)))  # type: ignore[arg-type]
