"""GeoTIFF layer tiles against TiTiler and in-process rio-tiler (issue 4, "Speed").

Data: an 8192x8192 3-band uint8 COG in EPSG:3857 (DEFLATE, 512x512 blocks, 4 overviews,
smooth image-like content: gradients and waves), made once and kept in `bench/.data/`.
Tiles: a fixed sample of 240 tiles z7-z12 inside the raster, 256 px PNG (RGBA, mask as
alpha) from every server.

Servers (uvicorn, one worker each, on loopback, the same GDAL settings):
- TiTiler: a plain titiler.core `TilerFactory` app (bench/anchors/titiler_cog.py),
  `/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url=<file>`;
- ours: the samsyn app, `/api/layers/{id}/tiles/{z}/{x}/{y}.png` of a GeoTIFF layer whose
  COG is in Worldbase's storage (`storage://`), a global (library) layer read anonymously:
  "uncached" is a server whose tile cache never hits (every tile read and encoded; tiles
  reach storage only on a second hit, so none is written), "cached" the app as shipped
  after one pass over the tiles (answered by the fast lane, core.fast_lane, before routing).
In-process anchors: rio-tiler `Reader.tile()` + `ImageData.render("PNG")` (GDAL, zlevel 6),
and the same read with our encoder (`geo.raster.encode`).

Prints one line per figure with ratios taken in this run (medians of interleaved runs), and
the bytes per tile (the mean over the sample) from ours and from TiTiler.
Needs `wrk` (Debian package `wrk`; `make bench` installs it when missing).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import free_port, python, server

DATA = Path(__file__).parent / ".data"
COG = DATA / "raster_8192_3857_v3.tif"
SIZE = 8192
# z12 is the raster's native zoom (38.22 m pixels): 8192 px = 32 tiles at z12.
ORIGIN_TILE_Z12 = (2144, 1360)  # the tile at (8.5 E, 51.6 N), the raster's north-west corner
MERCATOR_HALF = 20037508.342789244
SAMPLE = int(os.environ.get("WORLDBASE_BENCH_TILES", "240"))
SECONDS = int(os.environ.get("WORLDBASE_BENCH_SECONDS", "4"))
REPEATS = int(os.environ.get("WORLDBASE_BENCH_REPEATS", "3"))
JWT = "bench-" + "x" * 40


def log(message: str) -> None:
    print(message, flush=True)


# --- Data ------------------------------------------------------------------------------------


def cog_bounds() -> tuple[float, float, float, float]:
    span = 2 * MERCATOR_HALF / (1 << 12)
    minx = -MERCATOR_HALF + ORIGIN_TILE_Z12[0] * span
    maxy = MERCATOR_HALF - ORIGIN_TILE_Z12[1] * span
    return minx, maxy - 32 * span, minx + 32 * span, maxy


def make_cog() -> Path:
    if COG.exists():
        return COG
    import rasterio
    from rasterio.shutil import copy as rio_copy
    from rasterio.transform import from_bounds

    DATA.mkdir(parents=True, exist_ok=True)
    tmp = DATA / "raster_8192_3857.tmp.tif"
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:3857",
        "transform": from_bounds(*cog_bounds(), SIZE, SIZE),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "DEFLATE",
    }
    with rasterio.open(tmp, "w", **profile) as dst:
        xs = np.arange(SIZE, dtype=np.float32)[None, :]
        for row in range(0, SIZE, 512):
            ys = np.arange(row, row + 512, dtype=np.float32)[:, None]
            waves = 60 * np.sin(xs / 700) * np.cos(ys / 500)
            bands = [
                xs / 40 + waves + 40 * np.sin(ys / 900),
                ys / 40 - waves + 30 * np.cos(xs / 1100),
                128 + waves + 50 * np.sin((xs + ys) / 1500),
            ]
            # Smooth content: GDAL's PNG (zlevel 6) then takes the ~14 ms per tile ANCHORS.md
            # measured; per-pixel noise would make it several times slower (and us faster).
            block = np.stack([np.clip(b, 0, 255) for b in bands]).astype(np.uint8)
            dst.write(block, window=((row, row + 512), (0, SIZE)))
    rio_copy(
        tmp,
        COG,
        driver="COG",
        COMPRESS="DEFLATE",
        BLOCKSIZE=512,
        OVERVIEW_RESAMPLING="AVERAGE",
        NUM_THREADS="ALL_CPUS",
    )
    tmp.unlink()
    return COG


def tile_list() -> list[tuple[int, int, int]]:
    """Tiles z7-z12 inside the raster (a fixed random sample)."""
    tiles: list[tuple[int, int, int]] = []
    x0, y0 = ORIGIN_TILE_Z12
    for z in range(7, 13):
        shift = 12 - z
        count = max(1, 32 >> shift)
        for dx in range(count):
            for dy in range(count):
                tiles.append((z, (x0 >> shift) + dx, (y0 >> shift) + dy))
    random.Random(3).shuffle(tiles)
    low = [t for t in tiles if t[0] <= 9]
    return low + [t for t in tiles if t[0] > 9][: max(0, SAMPLE - len(low))]


# --- Servers ---------------------------------------------------------------------------------


def create_uncached_app() -> Any:
    """The app from the environment whose tile cache never hits (every tile rendered)."""
    from worldbase.app import create_app_from_env
    from worldbase.geo.tile_cache import TileCache

    async def never(self: TileCache, key: Any) -> None:
        return None

    TileCache.get = never  # type: ignore[assignment,method-assign]
    os.environ["WORLDBASE_FAST_LANE_MB"] = "0"  # the fast lane is a cache tier too
    return create_app_from_env()


def gdal_env() -> dict[str, str]:
    """Our GDAL settings as environment variables (TiTiler reads them from there)."""
    from worldbase.geo.raster_sources import gdal_options
    from worldbase.settings import Settings

    options = gdal_options(Settings(_env_file=None))  # type: ignore[call-arg]
    return {key: str(value) for key, value in options.items()}


COG_KEY = "samsyn/cogs/bench-raster.tif"


def make_layer(base: str, data_dir: Path) -> tuple[str, str]:
    """Register a user and create a global GeoTIFF layer over the stored COG; returns (layer
    id, token). Only the upload service may name a stored object (issue 18 item 4), so the
    layer is made here as that service makes it, in the server's own database."""
    with httpx.Client(base_url=base, timeout=30) as client:
        body = {"email": "bench@example.org", "password": "bench-password-123"}
        response = client.post("/api/auth/register", json=body)
        if response.status_code not in (200, 201):
            response = client.post("/api/auth/login", json=body)
        token = response.json()["access_token"]
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    return asyncio.run(_stored_cog_layer(data_dir, uuid.UUID(me["id"]))), token


async def _stored_cog_layer(data_dir: Path, user_id: uuid.UUID) -> str:
    from worldbase.apps.samsyn.layers import service as service_layers
    from worldbase.core import users
    from worldbase.core.db import Database
    from worldbase.settings import Settings

    settings = Settings(_env_file=None, worldbase_data_dir=data_dir, jwt_secret=JWT)  # type: ignore[call-arg]
    database = Database(settings, pooled=False)
    try:
        async with database.sessionmaker() as session:
            user = await users.get(session, user_id=user_id)
            assert user is not None
            values = {
                "name": "bench raster",
                "source_type": "geotiff",
                "source_config": {"delivery": "tiles", "cogUrl": f"storage://{COG_KEY}"},
                "is_global": True,  # a library layer: tiles are read anonymously
            }
            layer = await service_layers.create(session, user=user, values=values)
            return str(layer.id)
    finally:
        await database.dispose()


# --- Load ------------------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float


def wrk(base: str, paths: list[str], *, connections: int, token: str | None = None) -> Result:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    listed = ",\n".join(f'"{p}"' for p in paths)
    script.write_text(
        f"local paths = {{\n{listed}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\nend\n'
    )
    cmd = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{SECONDS}s", "--latency"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    cmd += ["-s", str(script), base]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    script.unlink()
    rps = float(out.split("Requests/sec:")[1].split()[0])
    p50 = out.split(" 50%")[1].split()[0]
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    unit = "us" if p50.endswith("us") else "ms" if p50.endswith("ms") else "s"
    value = float(p50.removesuffix(unit)) * units[unit]
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx answers:\n{out}")
    return Result(rps, value)


def check(url: str, token: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url, headers=headers, timeout=60)
    if response.status_code != 200 or response.headers["content-type"] != "image/png":
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
    return response.content


# --- In process ------------------------------------------------------------------------------


def in_process(tiles: list[tuple[int, int, int]]) -> tuple[float, float, float]:
    """p50 ms of rio-tiler read + GDAL PNG render, of the read alone, of read + our encoder."""
    from rio_tiler.io import Reader

    from worldbase.geo.raster import encode
    from worldbase.geo.raster_params import RenderParams
    from worldbase.geo.raster_sources import gdal_env as env
    from worldbase.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    anchor, read, ours = [], [], []
    with warnings.catch_warnings(), env(settings), Reader(str(COG)) as src:
        warnings.simplefilter("ignore")
        for z, x, y in tiles[:5]:
            src.tile(x, y, z).render(img_format="PNG")
        for z, x, y in tiles:
            start = time.perf_counter()
            img = src.tile(x, y, z)
            mid = time.perf_counter()
            img.render(img_format="PNG")
            anchor.append(time.perf_counter() - start)
            read.append(mid - start)
            img = src.tile(x, y, z)
            start = time.perf_counter()
            encode(img, RenderParams(), "png")
            ours.append(read[-1] + time.perf_counter() - start)
    return tuple(statistics.median(v) * 1000 for v in (anchor, read, ours))  # type: ignore[return-value]


def temporal_overhead() -> float:
    """p50 microseconds of resolving `?time=` to a COG URL (a monthly template)."""
    from worldbase.apps.samsyn.models import SourceType
    from worldbase.apps.samsyn.raster.service import RasterLayer, source

    config = {
        "delivery": "tiles",
        "cogUrlTemplate": "storage://samsyn/cogs/sst/{year}/{month}/sst_{YYYYMM}.tif",
        "temporal": {
            "enabled": True,
            "start": "2000-01-01",
            "end": "2024-12-31",
            "resolution": "monthly",
        },
    }
    layer = RasterLayer(uuid.uuid4(), "t", SourceType.geotiff, config, "v")
    samples = []
    for i in range(2000):
        when = f"{2000 + i % 25}-{1 + i % 12:02d}-01"
        start = time.perf_counter()
        source(layer, time=when)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


# --- Run -------------------------------------------------------------------------------------


def run() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench/raster.py loads its servers with wrk: apt-get install wrk")
    started = time.perf_counter()
    make_cog()
    tiles = tile_list()
    log(
        f"raster: COG {COG.stat().st_size / 1e6:.0f} MB, {len(tiles)} tiles z7-z12, "
        f"{SECONDS}s per run"
    )
    a_p50, read_p50, ours_ip50 = in_process(tiles)
    log(
        f"raster in-process p50: rio-tiler read+PNG(zlevel 6) {a_p50:.1f} ms "
        f"(read {read_p50:.1f} ms) | read + our PNG encoder {ours_ip50:.1f} ms"
    )
    data_dir = Path(tempfile.mkdtemp(prefix="wb-bench-raster-"))
    stored = data_dir / "storage" / COG_KEY
    stored.parent.mkdir(parents=True)
    stored.symlink_to(COG.resolve())
    env = {
        "WORLDBASE_DATA_DIR": str(data_dir),
        "JWT_SECRET": JWT,
        "LOG_LEVEL": "WARNING",
        "WORLDBASE_APPS": "samsyn",
        "WORLDBASE_INLINE_WORKER": "false",
        "WORLDBASE_PERIODIC_JOBS": "false",
        "MAX_REQUESTS_PER_MINUTE": "1000000",
    }
    uvicorn = [python(), "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]
    uvicorn += ["--workers", "1"]
    ports = [free_port() for _ in range(3)]
    ours_app = ["--factory", "worldbase.app:create_app_from_env"]
    uncached_app = ["--factory", "bench.raster:create_uncached_app"]
    titiler_app = [*uvicorn, "--port", str(ports[2]), "bench.anchors.titiler_cog:app"]
    with ExitStack() as stack:
        cached = stack.enter_context(
            server([*uvicorn, "--port", str(ports[0]), *ours_app], ports[0], env)
        )
        layer_id, _ = make_layer(cached, data_dir)
        uncached = stack.enter_context(
            server([*uvicorn, "--port", str(ports[1]), *uncached_app], ports[1], env)
        )
        titiler = stack.enter_context(server(titiler_app, ports[2], gdal_env()))
        ours_paths = [f"/api/layers/{layer_id}/tiles/{z}/{x}/{y}.png" for z, x, y in tiles]
        titiler_paths = [
            f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url={COG.resolve()}" for z, x, y in tiles
        ]
        check(uncached + ours_paths[0])
        # One pass over the sample on each: fills the cache of the "cached" server.
        ours_bytes = sum(len(check(cached + path)) for path in ours_paths) / len(tiles)
        theirs_bytes = sum(len(check(titiler + path)) for path in titiler_paths) / len(tiles)
        log(
            f"raster bytes per tile (PNG, mean of {len(tiles)}): ours {ours_bytes:.0f} | "
            f"TiTiler {theirs_bytes:.0f} | ours/TiTiler {ours_bytes / theirs_bytes:.2f}x "
            "(goal <= 1.1)"
        )
        results: dict[str, list[Result]] = {}
        for _ in range(REPEATS):
            for c in (1, 8):
                results.setdefault(f"titiler c{c}", []).append(
                    wrk(titiler, titiler_paths, connections=c)
                )
                results.setdefault(f"ours c{c}", []).append(
                    wrk(uncached, ours_paths, connections=c)
                )
                results.setdefault(f"cached c{c}", []).append(
                    wrk(cached, ours_paths, connections=c)
                )

    def med(name: str) -> Result:
        runs = results[name]
        return Result(
            statistics.median(r.rps for r in runs), statistics.median(r.p50_ms for r in runs)
        )

    for c in (1, 8):
        t, o, k = med(f"titiler c{c}"), med(f"ours c{c}"), med(f"cached c{c}")
        log(
            f"raster uncached c={c}: ours {o.rps:.1f} tiles/s p50 {o.p50_ms:.1f} ms | TiTiler "
            f"{t.rps:.1f} tiles/s p50 {t.p50_ms:.1f} ms | ours/TiTiler {o.rps / t.rps:.2f}x "
            f"(goal >= 1.3)"
        )
        log(
            f"raster cached c={c}: {k.rps:.0f} tiles/s p50 {k.p50_ms:.2f} ms | cached/uncached "
            f"{k.rps / o.rps:.0f}x (goal >= 20) | cached/TiTiler {k.rps / t.rps:.0f}x"
        )
    o1 = med("ours c1")
    log(
        f"raster p50 ours over HTTP (c=1) / in-process rio-tiler read+encode: "
        f"{o1.p50_ms / a_p50:.2f} (goal <= 1.2); / read + our encoder: {o1.p50_ms / ours_ip50:.2f}"
    )
    log(
        f"raster temporal: resolving ?time= to the COG p50 {temporal_overhead():.1f} us "
        "(goal < 1000)"
    )
    log(f"raster bench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    run()
