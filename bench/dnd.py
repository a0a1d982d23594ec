"""D&D image service: cached scene lookup and image retrieval over HTTP with 10,000 images
stored, on embedded SQLite and on PostgreSQL, and procedural generation of a 1024x576 image.

Anchors are the seed's own performance table (scene cache lookup ~15 ms, image retrieval
~30 ms) and the issue's generation budget (< 1 s). Prints ours / anchor per figure.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, python, server

IMAGES = 10_000
SCENES = 1_000
HOT = 300  # images with a full-size file (the ones retrieved); the rest get small files
REQUESTS = 300
PG_SERVER = os.environ.get("WORLDBASE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


def _encoded() -> tuple[bytes, bytes, bytes]:
    from worldbase.apps.dnd import imaging, procedural

    picture = procedural.render(
        text="A tavern at evening, rain", subject_type="scene", width=1024, height=576, seed=1
    )
    encoded = imaging.encode(picture, quality=85)
    tiny = imaging.encode(picture.resize((64, 36)), quality=60)
    return encoded.full, encoded.thumbnail, tiny.full


def _write_files(root: Path) -> None:
    full, thumb, tiny = _encoded()
    for folder in ("full", "thumbnails"):
        (root / "dnd" / "images" / folder).mkdir(parents=True, exist_ok=True)
    for i in range(IMAGES):
        (root / f"dnd/images/full/{i}.webp").write_bytes(full if i < HOT else tiny)
        (root / f"dnd/images/thumbnails/{i}.webp").write_bytes(thumb if i < HOT else tiny)


async def _insert_rows(settings: Any) -> None:
    from datetime import timedelta

    from sqlalchemy import insert

    from worldbase.apps.dnd.models import ImageAsset, SceneCache
    from worldbase.core.db import Database, utcnow

    db = Database(settings, pooled=False)
    now = utcnow()
    kinds = ("scene", "item", "character")
    rows = [
        {
            "id": i + 1,
            "subject_type": kinds[i % 3],
            "subject_name": f"Subject {i % 700}",
            "component": "bench",
            "prompt": f"Bench image number {i}",
            "aspect_ratio": "16:9",
            "provider": "procedural",
            "width": 1024,
            "height": 576,
            "storage_path_full": f"dnd/images/full/{i}.webp",
            "storage_path_thumbnail": f"dnd/images/thumbnails/{i}.webp",
            "file_size_bytes": 1000,
            "generation_time_ms": 100,
            "is_featured": i % 50 == 0,
            "is_deleted": False,
            "use_count": 0,
            "created_at": now - timedelta(seconds=i),
            "updated_at": now,
        }
        for i in range(IMAGES)
    ]
    scenes = [
        {
            "cache_key": f"loc {i}|evening|rain",
            "location": f"Loc {i}",
            "time_of_day": "Evening",
            "weather": "Rain",
            "image_id": (i % HOT) + 1,
            "hit_count": 0,
            "miss_count": 1,
            "created_at": now,
            "expires_at": now + timedelta(days=7),
        }
        for i in range(SCENES)
    ]
    try:
        async with db.engine.begin() as conn:
            for start in range(0, IMAGES, 2000):
                await conn.execute(insert(ImageAsset), rows[start : start + 2000])
            await conn.execute(insert(SceneCache), scenes)
            if not db.is_sqlite:
                from sqlalchemy import text

                await conn.execute(text("SELECT setval('image_assets_id_seq', :n)"), {"n": IMAGES})
                await conn.execute(text("ANALYZE"))
    finally:
        await db.dispose()


def _p50(client: httpx.Client, method: str, urls: list[str]) -> float:
    for url in urls[:20]:  # warm-up
        client.request(method, url).raise_for_status()
    latencies = []
    for url in urls:
        started = time.perf_counter()
        client.request(method, url).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies)


async def _pg_database(name: str, *, drop: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    if not drop:
        conn = await asyncpg.connect(f"{PG_SERVER}/{name}")
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        finally:
            await conn.close()


def _backend(label: str, database_url: str | None) -> None:
    from worldbase.core.migrate import upgrade_head
    from worldbase.settings import Settings

    data_dir = Path(tempfile.mkdtemp(prefix="wb-bench-dnd-"))
    env = {
        "WORLDBASE_DATA_DIR": str(data_dir),
        "WORLDBASE_APPS": "dnd",
        "LOG_LEVEL": "WARNING",
        "JWT_SECRET": "bench-" + "x" * 40,
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    try:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            worldbase_data_dir=data_dir,
            database_url=database_url,
            jwt_secret=env["JWT_SECRET"],
        )
        upgrade_head(settings)
        _write_files(settings.local_storage_path)
        asyncio.run(_insert_rows(settings))
        port = free_port()
        args = [str(Path(python()).parent / "worldbase"), "serve", "--port", str(port)]
        with server(args, port, env) as base, httpx.Client(base_url=base, timeout=30) as client:
            rng = random.Random(1)
            scene_urls = [
                f"/api/v1/scenes/generate?location=Loc%20{rng.randrange(SCENES)}"
                "&time_of_day=Evening&weather=Rain"
                for _ in range(REQUESTS)
            ]
            image_urls = [f"/api/v1/images/{rng.randrange(1, HOT + 1)}" for _ in range(REQUESTS)]
            scene_p50 = _p50(client, "POST", scene_urls)
            image_p50 = _p50(client, "GET", image_urls)
            search_p50 = _p50(
                client,
                "GET",
                [f"/api/v1/images/search?subject_name=Subject%20{rng.randrange(700)}"] * 100,
            )
        print(
            f"dnd {label}: cached scene lookup p50 {scene_p50:.1f} ms | seed 15 ms"
            f" | ratio {scene_p50 / 15:.2f}"
        )
        print(
            f"dnd {label}: image retrieval (base64) p50 {image_p50:.1f} ms | seed 30 ms"
            f" | ratio {image_p50 / 30:.2f}"
        )
        print(
            f"dnd {label}: search by subject p50 {search_p50:.1f} ms | seed DB query 10 ms"
            f" | ratio {search_p50 / 10:.2f}"
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _generation() -> None:
    from worldbase.apps.dnd import imaging, procedural

    times = []
    for seed in range(5):
        started = time.perf_counter()
        picture = procedural.render(
            text="A harbor town at sunset, ships in the bay",
            subject_type="scene",
            width=1024,
            height=576,
            seed=seed,
        )
        imaging.encode(picture, quality=85)
        times.append((time.perf_counter() - started) * 1000)
    p50 = statistics.median(times)
    print(
        f"dnd procedural 1024x576 (render + WebP) p50 {p50:.0f} ms | budget 1000 ms"
        f" | ratio {p50 / 1000:.2f}"
    )


def run() -> None:
    _generation()
    _backend("sqlite", None)
    name = f"worldbase_bench_dnd_{os.getpid()}"
    try:
        asyncio.run(_pg_database(name, drop=False))
    except OSError:
        print("dnd postgresql: skipped (PostgreSQL not reachable)")
        return
    try:
        _backend("postgresql", f"{PG_SERVER}/{name}")
    finally:
        asyncio.run(_pg_database(name, drop=True))


if __name__ == "__main__":
    run()
