"""OSM tracker (issue 7, "Speed"): `.osm.pbf` import rates and the bbox + tag query.

Data: a synthetic `.osm.pbf` written with pyosmium (N nodes, default 1,000,000, uniform
over lon 13-14 / lat 52-53 with metadata; 2% `amenity=cafe` with a name, 8% other tags),
and a second file of N/100 ways (5 nodes each) whose nodes are only in the database.

- (a) import through our path (`apps.osm.files.import_file`: the validating count pass,
  the bulk node path — osmium-tool's `export -f pg` into COPY when `osmium` is installed,
  else pyosmium + binary COPY; a node's history row waits for its first change) into a
  scratch PostGIS database `worldbase_bench_osm`
  (created and dropped here, migrated: the table is empty, so the first-load mode, with
  every index built at the end, in the same timed call) and into SQLite (N/5 nodes);
- (b) the anchor: a bare pyosmium read (id, tags, location) plus asyncpg
  `copy_records_to_table` of the same nodes into an unindexed 3-column table;
- (c) `GET /objects?bbox=...&tag=amenity=cafe` p50 over N + N/100 objects (uvicorn, one
  worker) against the same query as bare SQL through asyncpg; EXPLAIN shows the indexes.
- (d) WebSocket fan-out: a uvicorn worker on loopback (in-process hub), 1,000 clients in
  this process (a minimal protocol client, `FanoutClient`), each subscribed to every node
  event on `/ws/{id}` (in batch mode unless WORLDBASE_BENCH_OSM_WS_BATCH=0); 100
  events/s (10 `POST /data-sources/{id}/ingest` a second, 10 new nodes each) for 30 s
  (WORLDBASE_BENCH_OSM_WS_SECONDS; 300 for the issue's five minutes of flat memory). The
  send time travels in a tag: p99 of (receipt - send) over every delivery, the deliveries
  missing at the end (clients closed as too slow count here), and the server's RSS after
  the clients subscribed and at the end. Run again on WORLDBASE_BENCH_OSM_WS_WORKERS
  (default 2) workers sharing the Redis hub (WORLDBASE_BENCH_REDIS), RSS summed over them.

One line per figure with the ratio to its target or anchor. The machine is shared (2
cores): rates move by tens of per cent between runs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import resource
import statistics
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, python, server

PG = os.environ.get("WORLDBASE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = "worldbase_bench_osm"
N_NODES = int(os.environ.get("WORLDBASE_BENCH_OSM_NODES", "1000000"))
N_WAYS = N_NODES // 100
N_SQLITE = N_NODES // 5
BBOX = (13.40, 52.40, 13.50, 52.50)  # ~1% of the nodes, ~200 cafes
QUERIES = 200
JWT = "bench-" + "x" * 40
BATCH = 20_000
WS_CLIENTS = int(os.environ.get("WORLDBASE_BENCH_OSM_WS_CLIENTS", "1000"))
WS_SECONDS = int(os.environ.get("WORLDBASE_BENCH_OSM_WS_SECONDS", "30"))
WS_POSTS_PER_SECOND, WS_NODES_PER_POST = 10, 10
# Subscribers ask for batch frames (events ingested together, one frame): 100,000
# single-event frames a second is more than one server process (and this client) can send.
WS_BATCH = os.environ.get("WORLDBASE_BENCH_OSM_WS_BATCH", "1") == "1"
# The fan-out also runs on this many uvicorn workers sharing a Redis hub (0: skip that run).
WS_WORKERS = int(os.environ.get("WORLDBASE_BENCH_OSM_WS_WORKERS", "2"))
REDIS = os.environ.get("WORLDBASE_BENCH_REDIS", "redis://127.0.0.1:6379/5")
RSS_EVERY_SECONDS = 30
WS_SENT_KEY = b'"bench_sent":"'  # as the server writes JSON (compact separators)


def log(message: str) -> None:
    print(message, flush=True)


# --- Data ------------------------------------------------------------------------------------


def write_nodes(path: Path, n: int, seed: int = 7) -> None:
    import osmium
    from osmium.osm.mutable import Node

    rng = random.Random(seed)
    with osmium.SimpleWriter(str(path)) as writer:
        for i in range(1, n + 1):
            kind = i % 50
            tags: dict[str, str] = {}
            if kind == 0:
                tags = {"amenity": "cafe", "name": f"Cafe {i}"}
            elif kind < 5:
                tags = {"shop": "bakery"} if kind % 2 else {"highway": "crossing"}
            writer.add_node(
                Node(
                    id=i,
                    version=1 + i % 3,
                    changeset=1_000_000 + i // 200,
                    uid=1000 + i % 97,
                    user=f"mapper{i % 97}",
                    timestamp="2024-05-01T12:00:00Z",
                    location=(13 + rng.random(), 52 + rng.random()),
                    tags=tags,
                )
            )


def write_ways(path: Path, n: int, n_nodes: int) -> None:
    import osmium
    from osmium.osm.mutable import Way

    step = n_nodes // n
    with osmium.SimpleWriter(str(path)) as writer:
        for j in range(1, n + 1):
            first = (j - 1) * step + 1
            refs = list(range(first, first + 5))
            writer.add_way(Way(id=j, version=1, nodes=refs, tags={"highway": "residential"}))


# --- Databases -------------------------------------------------------------------------------


async def recreate_database(drop_only: bool = False) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{DB}"')
            await conn.execute(f'ALTER DATABASE "{DB}" SET jit = off')
    finally:
        await conn.close()
    if not drop_only:
        conn = await asyncpg.connect(f"{PG}/{DB}")
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        finally:
            await conn.close()


def settings_for(data_dir: Path, database_url: str | None) -> Any:
    from worldbase.settings import Settings

    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        worldbase_env="production",
        worldbase_data_dir=data_dir,
        jwt_secret=JWT,
        log_json=False,
        database_url=database_url,
        redis_url=None,
    )


# --- (a) our import path ---------------------------------------------------------------------


async def import_ours(settings: Any, path: Path) -> tuple[float, Any]:
    from worldbase.apps.osm.files import import_file
    from worldbase.core.db import Database

    db = Database(settings, pooled=False)
    try:
        started = time.perf_counter()
        report = await import_file(db, path, source_id=None)
        return time.perf_counter() - started, report
    finally:
        await db.dispose()


# --- (b) the anchor: bare pyosmium read + COPY ------------------------------------------------


async def bare_copy(path: Path) -> float:
    import asyncpg
    import osmium

    ewkb = struct.Struct("<BIIdd")
    conn = await asyncpg.connect(f"{PG}/{DB}")
    try:
        await conn.execute(
            "CREATE TABLE bare_nodes (osm_id bigint, tags jsonb, geom geometry(Point, 4326))"
        )
        await conn.set_type_codec(
            "geometry", schema="public", encoder=bytes, decoder=bytes, format="binary"
        )
        started = time.perf_counter()
        records: list[tuple[Any, ...]] = []
        for obj in osmium.FileProcessor(str(path), osmium.osm.NODE):
            tags = obj.tags
            location = obj.location
            records.append(
                (
                    obj.id,
                    json.dumps(dict(tags)) if len(tags) else "{}",
                    ewkb.pack(1, 0x20000001, 4326, location.lon, location.lat),
                )
            )
            if len(records) >= BATCH:
                await conn.copy_records_to_table("bare_nodes", records=records)
                records = []
        if records:
            await conn.copy_records_to_table("bare_nodes", records=records)
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE bare_nodes")
        return elapsed
    finally:
        await conn.close()


# --- (c) the query ---------------------------------------------------------------------------


async def explain_and_bare_p50(settings: Any) -> tuple[str, float, int]:
    """The app's own SQL (built by the service), EXPLAINed, then timed bare via asyncpg."""
    import asyncpg
    from sqlalchemy import func, select
    from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

    from worldbase.apps.osm import service
    from worldbase.apps.osm.models import OSMObject
    from worldbase.core.db import Database

    db = Database(settings, pooled=False)
    try:
        async with db.sessionmaker() as session:
            filters = service.ObjectFilters(tags=[("amenity", "cafe")], bbox=BBOX)
            page = (
                service._filtered(session, select(OSMObject), filters)
                .order_by(OSMObject.updated_at.desc(), OSMObject.id)
                .limit(100)
            )
            count = service._filtered(session, select(func.count(OSMObject.id)), filters)
            dialect = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
            compiled = [q.compile(dialect=dialect) for q in (page, count)]
            sql = [str(c) for c in compiled]
            args = [[_arg(c.params[name]) for name in c.positiontup or []] for c in compiled]
    finally:
        await db.dispose()
    conn = await asyncpg.connect(f"{PG}/{DB}", server_settings={"jit": "off"})
    try:
        explain = await conn.fetch(f"EXPLAIN ANALYZE {sql[0]}", *args[0])
        plan = "\n".join(r[0] for r in explain)
        total = await conn.fetchval(sql[1], *args[1])
        latencies = []
        for i in range(QUERIES + 20):
            started = time.perf_counter()
            await conn.fetch(sql[0], *args[0])
            await conn.fetchval(sql[1], *args[1])
            if i >= 20:
                latencies.append((time.perf_counter() - started) * 1000)
        return plan, statistics.median(latencies), int(total)
    finally:
        await conn.close()


def _arg(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict) else value


def api_p50(base: str) -> tuple[float, int]:
    box = ",".join(str(v) for v in BBOX)
    url = f"{base}/objects?bbox={box}&tag=amenity=cafe"
    latencies = []
    with httpx.Client(timeout=30) as client:
        total = client.get(url).raise_for_status().headers["X-Total-Count"]
        for i in range(QUERIES + 20):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            if i >= 20:
                latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies), int(total)


def used_indexes(plan: str) -> str:
    names = ("ix_osm_objects_tags", "ix_osm_objects_geom", "ix_osm_objects_updated_at")
    found = [n for n in names if n in plan]
    return ", ".join(found) or "none (sequential scan)"


# --- run -------------------------------------------------------------------------------------


def run() -> None:
    from worldbase.core.migrate import upgrade_head

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-osm-"))
    nodes, ways, small = tmp / "nodes.osm.pbf", tmp / "ways.osm.pbf", tmp / "small.osm.pbf"
    t = time.perf_counter()
    write_nodes(nodes, N_NODES)
    write_ways(ways, N_WAYS, N_NODES)
    write_nodes(small, N_SQLITE)
    log(
        f"osm data: {N_NODES:,} nodes ({nodes.stat().st_size / 1e6:.1f} MB pbf), "
        f"{N_WAYS:,} ways, written in {time.perf_counter() - t:.1f} s"
    )
    asyncio.run(recreate_database())
    try:
        database_url = f"{PG}/{DB}"
        pg = settings_for(tmp / "pg", database_url)
        upgrade_head(pg)
        pg_s, report = asyncio.run(import_ours(pg, nodes))
        assert report.created == N_NODES, report.summary()
        bare_s = asyncio.run(bare_copy(nodes))
        ours_rate, bare_rate = N_NODES / pg_s, N_NODES / bare_s
        log(
            "osm import .osm.pbf -> PostGIS (our path, all indexes; no history rows until a "
            "node changes): "
            f"{ours_rate:,.0f} nodes/s ({pg_s:.1f} s) | target 50,000/s | "
            f"ratio {ours_rate / 50000:.2f}"
        )
        log(
            f"osm import vs bare pyosmium read + asyncpg COPY (unindexed 3 columns): "
            f"ours {ours_rate:,.0f}/s, anchor {bare_rate:,.0f}/s | target 0.5 | "
            f"ratio {ours_rate / bare_rate:.2f}"
        )
        ways_s, report = asyncio.run(import_ours(pg, ways))
        log(
            f"osm import ways (geometry from stored nodes, per-element path) -> PostGIS: "
            f"{N_WAYS / ways_s:,.0f} ways/s ({report.created:,} created)"
        )
        sqlite = settings_for(tmp / "sqlite", None)
        upgrade_head(sqlite)
        sqlite_s, report = asyncio.run(import_ours(sqlite, small))
        assert report.created == N_SQLITE, report.summary()
        log(
            f"osm import .osm.pbf -> SQLite ({N_SQLITE:,} nodes): {N_SQLITE / sqlite_s:,.0f} "
            f"nodes/s | target 10,000/s | ratio {N_SQLITE / sqlite_s / 10000:.2f}"
        )
        asyncio.run(analyze())
        plan, bare_p50, bare_total = asyncio.run(explain_and_bare_p50(pg))
        env = {
            "DATABASE_URL": database_url,
            "WORLDBASE_DATA_DIR": str(tmp / "pg"),
            "JWT_SECRET": JWT,
            "LOG_LEVEL": "WARNING",
            "WORLDBASE_ENV": "production",
        }
        port = free_port()
        uvicorn = [python(), "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]
        uvicorn += ["--ws-per-message-deflate", "false"]  # as `worldbase serve` runs it
        factory = ["--factory", "worldbase.app:create_app_from_env"]
        with server([*uvicorn, "--port", str(port), *factory], port, env) as base:
            p50, total = api_p50(base)
        assert total == bare_total, (total, bare_total)
        objects = N_NODES + N_WAYS
        log(
            f"osm GET /objects?bbox=...&tag=amenity=cafe over {objects:,} objects (PostGIS, "
            f"{total} matches, page of 100 + total): p50 {p50:.1f} ms | target < 50 ms | "
            f"ratio {p50 / 50:.2f}; bare SQL p50 {bare_p50:.1f} ms (ours/bare "
            f"{p50 / bare_p50:.1f}); indexes used: {used_indexes(plan)}"
        )
        source_id, token = asyncio.run(make_source(pg))
        rate = WS_POSTS_PER_SECOND * WS_NODES_PER_POST
        for workers in (1, WS_WORKERS) if WS_WORKERS > 1 else (1,):
            port = free_port()
            # Several workers share events through the Redis hub, as a deployment would.
            hub_env = env | ({"REDIS_URL": REDIS} if workers > 1 else {})
            args = [*uvicorn, "--port", str(port), "--workers", str(workers), *factory]
            with rss_server(args, port, hub_env) as (base, pid):
                # New ids each run: ingest is idempotent, a repeated node is no event.
                first_id = 2_000_000_000 + workers * 100_000_000
                fan = asyncio.run(fanout(base, pid, source_id, token, first_id=first_id))
            hub = "in-process hub" if workers == 1 else "Redis hub"
            log(
                f"osm WebSocket fan-out ({WS_CLIENTS:,} subscribers, {rate} events/s, "
                f"{WS_SECONDS} s, {workers} uvicorn worker(s), {hub}, batch frames {WS_BATCH}): "
                f"p99 {fan['p99']:.0f} ms, p50 {fan['p50']:.0f} ms | target p99 < 250 ms | "
                f"ratio {fan['p99'] / 250:.2f}; "
                f"delivered {fan['delivered']:,} of {fan['expected']:,}, {fan['closed']} clients "
                f"closed; server RSS {fan['rss_start']:.0f} -> {fan['rss_end']:.0f} MB "
                f"(every {RSS_EVERY_SECONDS} s: "
                f"{' '.join(f'{v:.0f}' for v in fan['rss_samples'])})"
            )
    finally:
        asyncio.run(recreate_database(drop_only=True))
    log(f"osm bench took {time.perf_counter() - started:.0f} s")


# --- (d) WebSocket fan-out -------------------------------------------------------------------


async def make_source(settings: Any) -> tuple[str, str]:
    from worldbase.apps.osm import service
    from worldbase.core.db import Database

    db = Database(settings, pooled=False)
    try:
        async with db.sessionmaker() as session:
            source, token = await service.create_source(
                session, values={"name": "bench fan-out", "type": "rest"}
            )
            return source.id, token
    finally:
        await db.dispose()


def _raise_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, 4 * WS_CLIENTS + 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def rss_mb(pid: int) -> float:
    """The RSS of the server process and its worker processes (uvicorn --workers)."""
    total = 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            with contextlib.suppress(OSError):
                total += rss_mb(int(child))
    return total


@contextlib.contextmanager
def rss_server(args: list[str], port: int, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """Like `common.server`, with the process id (for its RSS) and room for the sockets."""
    _raise_open_files()  # inherited by the server
    proc = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("fan-out server did not start") from None
                time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class FanoutClient(asyncio.Protocol):
    """One subscriber of the fan-out: a minimal WebSocket client (RFC 6455: the upgrade, masked
    frames out, unfragmented frames in, pong for ping). A thousand `websockets` clients in
    one process took a core of this 2-core machine to read 10,000 frames a second, taking
    it from the server under test; this takes a fraction, and what is measured is the
    server's delivery, not this process's backlog."""

    def __init__(self, path: str, subscribe: bytes, fanout: FanoutState) -> None:
        self.path, self.subscribe, self.fanout = path, subscribe, fanout
        self.buffer = bytearray()
        self.upgraded = self.subscribed = self.ended = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def send_frame(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            head = buffer.find(b"\r\n\r\n")
            if head < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"upgrade refused: {bytes(buffer[:60])!r}")
            del buffer[: head + 4]
            self.upgraded = True
            self.send_frame(0x1, self.subscribe)
        while len(buffer) >= 2:
            opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                length, offset = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode == 0x1:
                self.text_received(payload)
            elif opcode == 0x9:
                self.send_frame(0xA, payload)
            elif opcode == 0x8:
                self.fanout.closed += not self.ended
                self.ended = True
                if self.transport is not None:
                    self.transport.close()

    def text_received(self, text: bytes) -> None:
        now = time.time()
        if not self.subscribed:
            if b'"subscribed"' in text:
                self.subscribed = True
                self.fanout.subscribed()
            return
        # A batch frame carries several events; bytes.find, not a regex (this process's
        # own delays are measured too).
        latencies = self.fanout.latencies
        start = text.find(WS_SENT_KEY)
        while start >= 0:
            start += len(WS_SENT_KEY)
            end = text.index(b'"', start)
            latencies.append(now - float(text[start:end]))
            start = text.find(WS_SENT_KEY, end)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fanout.closed += not self.ended
        self.ended = True


class FanoutState:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.closed = 0
        self.ready = 0
        self.all_ready = asyncio.Event()

    def subscribed(self) -> None:
        self.ready += 1
        if self.ready == WS_CLIENTS:
            self.all_ready.set()


async def fanout(
    base: str, pid: int, source_id: str, token: str, *, first_id: int = 2_000_000_000
) -> dict[str, Any]:
    state = FanoutState()
    loop = asyncio.get_running_loop()
    port = int(base.rsplit(":", 1)[1])
    subscribe = json.dumps({"type": "subscribe", "types": ["node"], "batch": WS_BATCH}).encode()
    clients: list[FanoutClient] = []
    for start in range(0, WS_CLIENTS, 100):  # in waves: the accept backlog stays short
        for i in range(start, start + 100):
            client = FanoutClient(f"/ws/bench-{i}", subscribe, state)
            await loop.create_connection(lambda client=client: client, "127.0.0.1", port)
            clients.append(client)
        await asyncio.sleep(0.2)
    await asyncio.wait_for(state.all_ready.wait(), timeout=120)
    await asyncio.sleep(2)
    rss_start = rss_mb(pid)
    url = f"{base}/data-sources/{source_id}/ingest"
    posts = WS_SECONDS * WS_POSTS_PER_SECOND
    post_ms: list[float] = []
    rss_samples: list[float] = []  # every RSS_EVERY_SECONDS: flat, or growing?
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        started = time.perf_counter()
        for k in range(posts):
            await asyncio.sleep(max(0.0, started + k / WS_POSTS_PER_SECOND - time.perf_counter()))
            sent = f"{time.time():.6f}"
            elements = [
                {
                    "type": "node",
                    "id": first_id + k * WS_NODES_PER_POST + j,
                    "lon": 13.5,
                    "lat": 52.5,
                    "version": 1,
                    "tags": {"bench_sent": sent},
                }
                for j in range(WS_NODES_PER_POST)
            ]
            if k % (WS_POSTS_PER_SECOND * RSS_EVERY_SECONDS) == 0:
                rss_samples.append(rss_mb(pid))
            posted = time.perf_counter()
            (await http.post(url, json={"elements": elements})).raise_for_status()
            post_ms.append((time.perf_counter() - posted) * 1000)
    await asyncio.sleep(3)  # the tail
    rss_end = rss_mb(pid)
    closed = state.closed  # by the server, before the end
    for client in clients:
        client.ended = True
        if client.transport is not None:
            client.transport.close()
    ms = sorted(v * 1000 for v in state.latencies) or [float("nan")]
    return {
        "p50": ms[len(ms) // 2],
        "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "delivered": len(state.latencies),
        "expected": posts * WS_NODES_PER_POST * WS_CLIENTS,
        "closed": closed,
        "post_p50": statistics.median(post_ms),
        "rss_start": rss_start,
        "rss_end": rss_end,
        "rss_samples": rss_samples,
    }


async def analyze() -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG}/{DB}")
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


if __name__ == "__main__":
    run()
