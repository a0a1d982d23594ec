"""osmium-tool (the `osmium` command, libosmium's own CLI, Debian package `osmium-tool`) for
the two file steps Python is slowest at, when it is installed:

- `file_info`: `osmium fileinfo -e` reads and checks the whole file in C++ — the count of
  objects for progress and the "malformed file: nothing written" check — about 10 times
  faster than iterating it in pyosmium.
- `copy_nodes`: the first load of a full file's nodes (create mode, PostgreSQL):
  `osmium export -f pg` writes every node as a PostgreSQL COPY text line (EWKB point, id,
  version, changeset, uid, user, timestamp, tags as JSON); the lines stream into a staging
  table and two INSERT … SELECT statements make the object and `create` history rows in
  the server. Python touches no node, which is what held the per-node path back (every
  pyosmium attribute read is a Python call; nine per node cost more than the COPY).

The result is the same rows as the Python path (`bulk.store_nodes`): the same columns,
versions (0 → 1), empty metadata as NULL, timestamps before 1971 as NULL, ids ordered
UUIDs. When the file is not a plain snapshot (several versions of an object, deleted
objects or nodes without a valid location, which the Python path rejects one by one into
the validation log), `copy_nodes` raises `NotPlain` and the caller takes the Python path.
Without the binary, everything here is skipped and the Python path is used.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.osm.models import OSMObject, OSMObjectHistory
from worldbase.core.errors import BadInput
from worldbase.geo.vector_io import copy_connection

# Formats `osmium export` reads that are full files (diffs take the per-element path).
SNAPSHOT_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.gz", ".osm.bz2")
CHUNK = 1 << 20
STAGE = "osm_node_stage"
# `osmium export -f pg -a …` writes the attributes in this fixed order, after the geometry.
EXPORT_ARGS = [
    "-f", "pg", "-n", "--geometry-types=point", "-a", "id,version,changeset,uid,user,timestamp",
]  # fmt: skip


class NotPlain(Exception):
    """The file needs the per-element path (history, deletions, invalid locations)."""


@dataclass(frozen=True)
class FileInfo:
    nodes: int
    ways: int
    relations: int
    multiple_versions: bool
    ordered: bool  # nodes, then ways, then relations, each by id (what `export` expects)

    @property
    def total(self) -> int:
        return self.nodes + self.ways + self.relations


def binary() -> str | None:
    return shutil.which("osmium")


async def _run(*args: str) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    return process.returncode or 0, out, err


async def file_info(path: Path) -> FileInfo | None:
    """Counts and checks the whole file; None without the binary; `BadInput` when the file
    is malformed."""
    osmium = binary()
    if osmium is None:
        return None
    code, out, err = await _run(osmium, "fileinfo", "-e", "-j", "--no-progress", str(path))
    if code != 0:
        reason = err.decode(errors="replace").strip().splitlines()
        raise BadInput(f"Malformed OSM file: {(reason[-1] if reason else 'unreadable')[:300]}")
    data = json.loads(out)["data"]
    count = data["count"]
    return FileInfo(
        nodes=int(count["nodes"]),
        ways=int(count["ways"]),
        relations=int(count["relations"]),
        multiple_versions=bool(data.get("multiple_versions")),
        ordered=bool(data.get("objects_ordered")),
    )


def usable(name: str, info: FileInfo | None) -> bool:
    lowered = name.lower()
    return (
        info is not None
        and not info.multiple_versions
        and info.ordered
        and info.nodes > 0
        and lowered.endswith(SNAPSHOT_SUFFIXES)
    )


def _ordered_id_prefix() -> str:
    """The first 24 characters of UUIDv7-style ids (ms time, version 7, variant, random);
    the last 12 are a counter, so ids ascend and the primary key grows at its end."""
    t = f"{(time.time_ns() // 1_000_000) & 0xFFFFFFFFFFFF:012x}"
    return f"{t[:8]}-{t[8:]}-7{random.getrandbits(12):03x}-{0x8000 | random.getrandbits(14):04x}-"


async def _stdout_chunks(process: asyncio.subprocess.Process) -> AsyncIterator[bytes]:
    assert process.stdout is not None
    while chunk := await process.stdout.read(CHUNK):
        yield chunk


async def copy_nodes(
    session: AsyncSession,
    path: Path,
    *,
    info: FileInfo,
    source_id: str | None,
    now: datetime,
) -> int:
    """Writes every node of `path` with its history row; returns how many. Raises `NotPlain`
    (before anything is committed: the caller's transaction rolls back) when not every node
    of the file came out as a visible node with a location."""
    osmium = binary()
    assert osmium is not None
    driver: Any = await copy_connection(session)
    await driver.execute(
        f"CREATE TEMP TABLE {STAGE} (geom geometry, osm_id bigint, version integer, "
        'changeset bigint, uid bigint, "user" text, ts text, tags jsonb) ON COMMIT DROP'
    )
    process = await asyncio.create_subprocess_exec(
        osmium, "export", *EXPORT_ARGS, "--no-progress", "-o", "-", str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await driver.copy_to_table(STAGE, source=_stdout_chunks(process), format="text")
    finally:
        stderr = await process.stderr.read() if process.stderr else b""
        code = await process.wait()
    if code != 0:  # `fileinfo` read the file: the per-element path decides what is wrong
        raise NotPlain(f"osmium export: {stderr.decode(errors='replace').strip()[-300:]}")
    copied = int(await driver.fetchval(f"SELECT count(*) FROM {STAGE}"))  # noqa: S608
    if copied != info.nodes:
        raise NotPlain(f"{info.nodes - copied} of {info.nodes} nodes are not plain visible nodes")
    objects, history = OSMObject.__tablename__, OSMObjectHistory.__tablename__
    await driver.execute(
        f'INSERT INTO "{objects}" (id, osm_id, type, tags, geom, source_id, version, '  # noqa: S608
        '"timestamp", changeset, "user", uid, deleted, created_at, updated_at) '
        "SELECT $1 || lpad(to_hex(row_number() OVER ()), 12, '0'), osm_id::text, 'node', "
        "tags, geom, $2, greatest(version, 1), "
        "CASE WHEN ts >= '1971-01-01' THEN ts::timestamptz END, "
        "nullif(changeset, 0), nullif(\"user\", ''), nullif(uid, 0), false, $3, $3 "
        f"FROM {STAGE}",
        _ordered_id_prefix(),
        source_id,
        now,
    )
    await driver.execute(
        f'INSERT INTO "{history}" (id, object_id, action, version, tags, geom_wkb, '  # noqa: S608
        '"timestamp", changeset, "user", source_id, recorded_at) '
        "SELECT $1 || lpad(to_hex(row_number() OVER (ORDER BY id)), 12, '0'), id, 'create', "
        'version, tags, ST_AsBinary(geom, \'NDR\'), "timestamp", changeset, "user", '
        f"source_id, $2 FROM \"{objects}\" WHERE type = 'node'",
        _ordered_id_prefix(),
        now,
    )
    await driver.execute(f"DROP TABLE {STAGE}")
    return copied
