"""A real WMS on loopback for the WMS tests: MapServer (Debian's `mapserv`) run as CGI by a
small threaded HTTP server, serving GeoTIFFs made here, plus misbehaving endpoints.

Without `mapserv` the server still starts, and `/wms` is a stand-in: MapServer's
capabilities of the same layer and a transparent image for any GetMap. Tests that only need
a WMS layer to exist (map and layer CRUD) run on it; tests of what the WMS draws or asks
for call `require_mapserver` (a skip locally, a failure in CI).

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
import io
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


# MapServer 8's GetCapabilities 1.3.0 of the map below, trimmed to what clients read.
STAND_IN_CAPABILITIES = """<?xml version='1.0' encoding="UTF-8" standalone="no" ?>
<WMS_Capabilities version="1.3.0" xmlns="http://www.opengis.net/wms"
  xmlns:xlink="http://www.w3.org/1999/xlink">
<Service><Name>WMS</Name><Title>Worldbase test WMS</Title>
  <OnlineResource xlink:href="{url}?"/></Service>
<Capability>
  <Request>
    <GetCapabilities><Format>text/xml</Format>
      <DCPType><HTTP><Get><OnlineResource xlink:href="{url}?"/></Get></HTTP></DCPType>
    </GetCapabilities>
    <GetMap><Format>image/png</Format><Format>image/jpeg</Format>
      <DCPType><HTTP><Get><OnlineResource xlink:href="{url}?"/></Get></HTTP></DCPType>
    </GetMap>
  </Request>
  <Exception><Format>XML</Format></Exception>
  <Layer>
    <Name>worldbase_test</Name><Title>Worldbase test WMS</Title>
    <CRS>EPSG:4326</CRS><CRS>EPSG:3857</CRS>
    <EX_GeographicBoundingBox><westBoundLongitude>-180</westBoundLongitude>
      <eastBoundLongitude>180</eastBoundLongitude><southBoundLatitude>-90</southBoundLatitude>
      <northBoundLatitude>90</northBoundLatitude></EX_GeographicBoundingBox>
    <BoundingBox CRS="EPSG:4326" minx="-90" miny="-180" maxx="90" maxy="180" />
    <Layer queryable="0" opaque="0" cascaded="0">
      <Name>quads</Name><Title>Quadrants</Title>
      <CRS>EPSG:4326</CRS><CRS>EPSG:3857</CRS>
      <EX_GeographicBoundingBox><westBoundLongitude>0</westBoundLongitude>
        <eastBoundLongitude>20</eastBoundLongitude><southBoundLatitude>40</southBoundLatitude>
        <northBoundLatitude>60</northBoundLatitude></EX_GeographicBoundingBox>
      <BoundingBox CRS="EPSG:4326" minx="40" miny="0" maxx="60" maxy="20" />
      <Dimension name="time" units="ISO8601" default="2024-01-01"
        nearestValue="0">2024-01-01/2024-02-01/P1M</Dimension>
    </Layer>
  </Layer>
</Capability>
</WMS_Capabilities>
"""


def _blank_png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", (width, height)).save(out, "PNG")
    return out.getvalue()


def _mapserv() -> str | None:
    for candidate in (shutil.which("mapserv"), "/usr/lib/cgi-bin/mapserv"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@dataclass
class WmsServer:
    base: str  # http://127.0.0.1:PORT
    mapserver: bool  # False: `/wms` is the stand-in
    requests: list[str] = field(default_factory=list)  # every request's path and query

    def getmaps(self) -> int:
        return sum("REQUEST=GetMap" in r for r in self.requests)

    @property
    def url(self) -> str:
        return f"{self.base}/wms"


def require_mapserver() -> None:
    """For tests of what the WMS draws or is asked: the real MapServer, not the stand-in."""
    if _mapserv() is None:
        service_missing("MapServer (`mapserv`, Debian cgi-mapserver/mapserver-bin)")


def _handler(
    mapserv: str | None, config: Path, stop: threading.Event, seen: list[str]
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
            if parts.path == "/wms" and mapserv is None:
                self._stand_in(parts.query)
            elif parts.path == "/wms":
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

        def _stand_in(self, query: str) -> None:
            params = {k.upper(): v[0] for k, v in parse_qs(query).items()}
            if params.get("REQUEST", "").lower() == "getcapabilities":
                url = f"http://127.0.0.1:{self.server.server_address[1]}/wms"
                body = STAND_IN_CAPABILITIES.format(url=url).encode()
                self._send(200, body, "text/xml")
            else:
                size = int(params.get("WIDTH", 256)), int(params.get("HEIGHT", 256))
                self._send(200, _blank_png(*size), "image/png")

        def _mapserver(self, query: str) -> None:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "MAPSERVER_CONFIG_FILE": str(config),
                "REQUEST_METHOD": "GET",
                "QUERY_STRING": query,
                "SERVER_NAME": "127.0.0.1",
            }
            assert mapserv is not None
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
        yield WmsServer(base, mapserv is not None, seen)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def pixel(png: bytes, x: int, y: int) -> tuple[int, ...]:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return tuple(image.convert("RGBA").getpixel((x, y)))  # type: ignore[arg-type]
