"""SamSyn WMS layers: tiles through Worldbase against the same GetMap sent to the WMS itself.

The WMS is MapServer (Debian's `mapserv`, run as a CGI per request behind a small HTTP
server on loopback, the tests' setup in `tests/mapserver.py`) serving a GeoTIFF. "Ours" is
the samsyn app (uvicorn, one worker, embedded settings) with a global WMS layer on it.

Figures (one line each, ratios taken in this run, medians of `REPEATS` runs):
- uncached: a pass over distinct tiles (z 6-7 over the data) through Worldbase vs the same
  GetMap requests sent straight to the WMS — what the proxy costs on a miss;
- cached: one tile again and again (memory tier), c=1 and c=8, vs the WMS direct at c=1
  (the CGI MapServer cannot take c=8: each request forks `mapserv`, and requests time out).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from tests.mapserver import start_wms

from bench.common import load, samsyn_server
from worldbase.geo.tiles import lonlat_to_tile
from worldbase.geo.wms import WmsSource, build_url, getmap_params, tile_bbox

SECONDS = int(os.environ.get("WORLDBASE_BENCH_SECONDS", "3"))
REPEATS = int(os.environ.get("WORLDBASE_BENCH_REPEATS", "3"))


def log(message: str) -> None:
    print(message, flush=True)


def tiles() -> list[tuple[int, int, int]]:
    out = []
    for z in (6, 7):
        x0, y0 = lonlat_to_tile(0.5, 59.5, z)
        x1, y1 = lonlat_to_tile(19.5, 40.5, z)
        out += [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    return out


def direct_url(wms_url: str, z: int, x: int, y: int) -> str:
    source = WmsSource(url=wms_url, layers="quads")
    params = getmap_params(source, bbox=tile_bbox(z, x, y), width=256, height=256)
    return build_url(wms_url, params)


def pass_rate(client: httpx.Client, urls: list[str]) -> float:
    start = time.perf_counter()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
    return len(urls) / (time.perf_counter() - start)


def run() -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wb-wms-bench-")))
        (tmp / "wms").mkdir()
        wms = stack.enter_context(contextmanager(start_wms)(tmp / "wms"))
        ours = samsyn_server(stack, tmp / "data", allowlist=f"{wms.base}/")
        client = stack.enter_context(httpx.Client(timeout=60))
        token = client.post(
            f"{ours}/api/auth/register",
            json={"email": "bench@example.org", "password": "bench password 1"},
        ).json()["access_token"]
        layer = client.post(
            f"{ours}/api/layers",
            json={
                "name": "Quadrants",
                "source_type": "wms",
                "is_global": True,
                "source_config": {"url": wms.url, "layers": "quads"},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert layer.status_code == 201, layer.text
        layer_id = layer.json()["id"]
        tile_list = tiles()
        log(f"WMS bench: {len(tile_list)} distinct tiles z6-7, MapServer CGI on loopback")
        direct, through = [], []
        for run_ in range(REPEATS):
            direct.append(pass_rate(client, [direct_url(wms.url, *t) for t in tile_list]))
            # A changed source_config makes new cache keys: every run misses.
            client.put(
                f"{ours}/api/layers/{layer_id}",
                json={"source_config": {"url": wms.url, "layers": "quads", "run": run_}},
                headers={"Authorization": f"Bearer {token}"},
            ).raise_for_status()
            urls = [f"{ours}/api/layers/{layer_id}/tiles/{z}/{x}/{y}" for z, x, y in tile_list]
            through.append(pass_rate(client, urls))
        d, t = statistics.median(direct), statistics.median(through)
        log(f"uncached tiles/s, c=1: ours {t:.1f} vs WMS direct {d:.1f} (ratio {t / d:.2f})")
        z, x, y = tile_list[len(tile_list) // 2]
        one = f"{ours}/api/layers/{layer_id}/tiles/{z}/{x}/{y}"
        client.get(one).raise_for_status()
        plain = [load(direct_url(wms.url, z, x, y), seconds=SECONDS) for _ in range(REPEATS)]
        p = statistics.median(r.requests_per_second for r in plain)
        for connections in (1, 8):
            cached = [load(one, seconds=SECONDS, connections=connections) for _ in range(REPEATS)]
            c = statistics.median(r.requests_per_second for r in cached)
            c50 = statistics.median(r.p50_ms for r in cached)
            log(
                f"cached tile req/s, c={connections}: ours {c:.0f} (p50 {c50:.1f} ms) vs "
                f"WMS direct c=1 {p:.1f} (ratio {c / max(p, 0.01):.0f}; vs our uncached "
                f"{c / t:.0f}x)"
            )


if __name__ == "__main__":
    run()
