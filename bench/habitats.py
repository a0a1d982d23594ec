"""Habitats: habitat tiles cached vs uncached vs in-process rio-tiler, and location look-ups
on PostGIS (issue 5, "Speed").

Data: a 40,000 x 20,000 uint16 classified raster (global EPSG:4326, 512 px deflate tiles,
internal overviews), made block by block by `geo.classified.write_classified_cog` and kept
in `bench/.data/` (gitignored; made once, about two minutes); a scratch PostGIS database
`worldbase_bench_habitats` (created and dropped here, `jit=off`) with the 12 demo habitats
and 10,000 species with one range polygon each (ellipses of 50-800 km, 48 vertices,
anywhere between 60 S and 75 N), GiST, `VACUUM ANALYZE`.

Servers (uvicorn, one worker each): the app as shipped ("cached": the two-tier tile cache,
here memory + local storage) and the app with a tile cache that never hits ("uncached",
`create_uncached_app`). Requests carry a game token (HS256, JWT_SECRET), as the game's do.
The anchor is in-process rio-tiler on the same file: `Reader.tile()` (nearest), the class
mask, and `rio_tiler.utils.render` to PNG with a one-entry colormap.

Figures (one line each, ratios in this run, medians of `REPEATS` interleaved runs):
- cached tile req/s vs uncached (goal >= 10x);
- uncached tile p50 vs the in-process rio-tiler p50 of the same tile (goal <= 1.5x);
- `/api/location_info/` p50 on PostGIS (goal < 30 ms).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
import shapely

from bench.common import free_port, load, python, server

PG = os.environ.get("WORLDBASE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = "worldbase_bench_habitats"
DATA = Path(__file__).parent / ".data"
WIDTH, HEIGHT = 40_000, 20_000
COG = DATA / f"habitats-{WIDTH}x{HEIGHT}.tif"
N_SPECIES = int(os.environ.get("WORLDBASE_BENCH_SPECIES", "10000"))
SECONDS = int(os.environ.get("WORLDBASE_BENCH_SECONDS", "3"))
REPEATS = int(os.environ.get("WORLDBASE_BENCH_REPEATS", "3"))
JWT_SECRET = "bench-" + "x" * 40
# (lon, lat, zoom): a mid zoom over central Europe and a full-resolution tile.
TILES = ((10.0, 50.0, 7), (10.0, 50.0, 10))
POINTS = ((10.0, 50.0), (-60.0, -5.0), (100.0, 60.0))


def log(message: str) -> None:
    print(message, flush=True)


# --- Data ------------------------------------------------------------------------------------


def make_raster() -> None:
    if COG.exists():
        return
    from rasterio.enums import Resampling

    from worldbase.apps.habitats.seed import DEMO_CLASSES
    from worldbase.geo.synthetic import write_classified_cog

    started = time.perf_counter()
    write_classified_cog(
        COG,
        width=WIDTH,
        height=HEIGHT,
        classes=[v for v, _ in DEMO_CLASSES],
        seed=11,
        overview_resampling=Resampling.nearest,
        cog_layout=False,
    )
    log(
        f"habitats: made {COG.name} ({COG.stat().st_size / 1e6:.0f} MB) in "
        f"{time.perf_counter() - started:.0f} s"
    )


async def recreate_database() -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", DB
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        await conn.execute(f'CREATE DATABASE "{DB}"')
        await conn.execute(f'ALTER DATABASE "{DB}" SET jit = off')
    finally:
        await conn.close()
    conn = await asyncpg.connect(f"{PG}/{DB}")
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        await conn.close()


async def drop_database() -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", DB
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB}"')
    finally:
        await conn.close()


def settings_for(data_dir: Path) -> Any:
    from worldbase.settings import Settings

    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        worldbase_env="production",
        worldbase_data_dir=data_dir,
        jwt_secret=JWT_SECRET,
        log_json=False,
        database_url=f"{PG}/{DB}",
        redis_url=None,
    )


def ranges(n: int, rng: np.random.Generator) -> list[Any]:
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    lon = rng.uniform(-170, 170, n)
    lat = rng.uniform(-60, 75, n)
    radius_km = rng.uniform(50, 800, n)
    out = []
    for x, y, r in zip(lon, lat, radius_km, strict=True):
        dy = r / 111.0
        dx = dy / max(np.cos(np.radians(y)), 0.2)
        ring = np.column_stack([x + dx * np.cos(angles), y + 0.6 * dy * np.sin(angles)])
        out.append(shapely.Polygon(np.clip(ring, [-180, -85], [180, 85])))
    return out


async def load_database(settings: Any) -> None:
    """The demo habitats and N_SPECIES species with a range each."""
    from sqlalchemy import text

    from worldbase.apps.habitats import service
    from worldbase.apps.habitats.models import Species, SpeciesOccurrence
    from worldbase.apps.habitats.seed import DEMO_HABITATS
    from worldbase.core.db import Database
    from worldbase.geo.bulk_insert import bulk_insert_features

    db = Database(settings)
    try:
        started = time.perf_counter()
        async with db.sessionmaker() as session:
            ids = []
            for code, name, ecosystem, color in DEMO_HABITATS:
                values = {
                    "name": name,
                    "iucn_code": code,
                    "ecosystem_type": ecosystem,
                    "color_hex": color,
                }
                ids.append((await service.create(session, values=values)).id)
        geoms = ranges(N_SPECIES, np.random.default_rng(5))
        async with db.sessionmaker() as session, session.begin():
            species = (
                {"id": i + 1, "name": f"Species {i}", "scientific_name": f"Genus species{i}"}
                | {"habitat_types": ["1.4"]}
                for i in range(N_SPECIES)
            )
            await bulk_insert_features(session, Species.__table__, species)  # type: ignore[arg-type]
            occurrences = (
                {
                    "species_id": i + 1,
                    "position": 0,
                    "is_range": True,
                    "geometry": g,
                    "properties": {},
                }
                for i, g in enumerate(geoms)
            )
            await bulk_insert_features(session, SpeciesOccurrence.__table__, occurrences)  # type: ignore[arg-type]
            await session.execute(
                text("SELECT setval('species_id_seq', (SELECT max(id) FROM species))")
            )
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE species, species_occurrences, habitats"))
        log(
            f"habitats: loaded {len(ids)} habitats and {N_SPECIES} species ranges in "
            f"{time.perf_counter() - started:.1f} s"
        )
    finally:
        await db.dispose()


# --- The uncached app ------------------------------------------------------------------------


def create_uncached_app() -> Any:
    """The app from the environment with a tile cache that never hits (every tile rendered)."""
    from bench.samsyn import _NeverCache
    from worldbase.app import create_app_from_env
    from worldbase.geo.tile_cache import TileCache, get_tile_cache

    app = create_app_from_env()

    async def never() -> TileCache:
        return TileCache(cache=_NeverCache(), storage=None)  # type: ignore[arg-type]

    app.dependency_overrides[get_tile_cache] = never
    return app


# --- Measurements ----------------------------------------------------------------------------


def anchor_p50(z: int, x: int, y: int, value: int, color: tuple[int, int, int, int]) -> float:
    """In-process rio-tiler: read (nearest) + class mask + PNG render, reader kept open."""
    import warnings

    from rio_tiler.io import Reader
    from rio_tiler.utils import render

    times = []
    with Reader(str(COG)) as reader, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline or len(times) < 20:
            start = time.perf_counter()
            image = reader.tile(x, y, z, tilesize=256, indexes=1, resampling_method="nearest")
            data = image.array
            selected = (np.ma.getdata(data)[0] == value) & ~np.ma.getmaskarray(data)[0]
            render(
                selected[None].astype(np.uint8),
                mask=(selected * 255).astype(np.uint8),
                colormap={1: color},
                img_format="PNG",
            )
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def median_of(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def habitat_at(base: str, lon: float, lat: float) -> dict[str, Any]:
    """The habitat whose class the raster has at (lon, lat): its tiles are not empty."""
    import rasterio

    with rasterio.open(COG) as dataset:
        value = int(next(dataset.sample([(lon, lat)]))[0])
    items = httpx.get(f"{base}/habitats", params={"limit": 100}).json()["items"]
    return next(h for h in items if h["raster_value"] == value)


def bench_tiles(cached: str, uncached: str, headers: dict[str, str]) -> None:
    from worldbase.apps.habitats import codes
    from worldbase.geo.tiles import lonlat_to_tile

    for lon, lat, z in TILES:
        detail = habitat_at(cached, lon, lat)
        habitat_id = detail["id"]
        value, color = detail["raster_value"], codes.rgba(detail["color_hex"])
        x, y = lonlat_to_tile(lon, lat, z)
        path = f"/habitats/{habitat_id}/tiles/{z}/{x}/{y}"
        first = httpx.get(cached + path, headers=headers)
        first.raise_for_status()
        assert httpx.get(uncached + path, headers=headers).content == first.content
        runs_c, runs_u, runs_a = [], [], []
        for _ in range(REPEATS):
            c = load(cached + path, seconds=SECONDS, headers=headers)
            u = load(uncached + path, seconds=SECONDS, headers=headers)
            runs_c.append((c.requests_per_second, c.p50_ms))
            runs_u.append((u.requests_per_second, u.p50_ms))
            a = anchor_p50(z, x, y, value, color)
            runs_a.append((1000.0 / a, a))
        (c_rps, c_p50), (u_rps, u_p50), (_, a_p50) = (
            median_of(runs_c),
            median_of(runs_u),
            median_of(runs_a),
        )
        log(
            f"habitats tile z{z} (class {value}, {len(first.content)} B): "
            f"cached {c_rps:.0f} req/s p50 {c_p50:.2f} ms | "
            f"uncached {u_rps:.0f} req/s p50 {u_p50:.2f} ms | "
            f"rio-tiler in-process p50 {a_p50:.2f} ms | "
            f"cached/uncached req/s {c_rps / u_rps:.1f} (goal >= 10) | "
            f"uncached/rio-tiler p50 {u_p50 / a_p50:.2f} (goal <= 1.5)"
        )


def bench_location(base: str) -> None:
    for lon, lat in POINTS:
        url = f"{base}/api/location_info/?lon={lon}&lat={lat}"
        body = httpx.get(url).json()
        runs = [load(url, seconds=SECONDS) for _ in range(REPEATS)]
        rps = statistics.median(r.requests_per_second for r in runs)
        p50 = statistics.median(r.p50_ms for r in runs)
        log(
            f"habitats location_info ({lon}, {lat}): {len(body['habitats'])} codes, "
            f"{len(body['species'])} species | {rps:.0f} req/s p50 {p50:.2f} ms (goal < 30 ms, "
            f"PostGIS, {N_SPECIES} ranges, {WIDTH}x{HEIGHT} raster)"
        )


# --- Run -------------------------------------------------------------------------------------


def run() -> None:
    started = time.perf_counter()
    make_raster()
    data_dir = Path(tempfile.mkdtemp(prefix="wb-bench-habitats-"))
    asyncio.run(recreate_database())
    try:
        from worldbase.core.migrate import upgrade_head

        settings = settings_for(data_dir)
        upgrade_head(settings)
        asyncio.run(load_database(settings))
        env = {
            "DATABASE_URL": f"{PG}/{DB}",
            "WORLDBASE_DATA_DIR": str(data_dir),
            "JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "WARNING",
            "WORLDBASE_ENV": "production",
            "HABITAT_RASTER_URL": str(COG.resolve()),
            "WORLDBASE_RASTER_DIRS": str(DATA.resolve()),  # local rasters: only from here
        }
        uvicorn = [python(), "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]
        ports = [free_port(), free_port()]
        token = jwt.encode({"sub": "bench-player"}, JWT_SECRET, algorithm="HS256")
        headers = {"Authorization": f"Bearer {token}"}
        with ExitStack() as stack:
            cached = stack.enter_context(
                server(
                    [*uvicorn, "--port", str(ports[0]), "--factory", _APP_FACTORY],
                    ports[0],
                    env,
                )
            )
            uncached = stack.enter_context(
                server(
                    [*uvicorn, "--port", str(ports[1]), "--factory", _UNCACHED_FACTORY],
                    ports[1],
                    env,
                )
            )
            bench_tiles(cached, uncached, headers)
            bench_location(cached)
    finally:
        asyncio.run(drop_database())
    log(f"habitats bench took {time.perf_counter() - started:.0f} s")


_APP_FACTORY = "worldbase.app:create_app_from_env"
_UNCACHED_FACTORY = "bench.habitats:create_uncached_app"


if __name__ == "__main__":
    run()
