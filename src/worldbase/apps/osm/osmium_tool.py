"""osmium-tool (the `osmium` command, libosmium's own CLI, Debian package `osmium-tool`) for
the two file steps Python is slowest at, when it is installed:

- `file_info`: `osmium fileinfo -e` reads and checks the whole file in C++ — the count of
  objects for progress and the "malformed file: nothing written" check — about 10 times
  faster than iterating it in pyosmium (when it cannot tell, pyosmium reads the file).
- `copy_nodes`: the first load of a full file's nodes (create mode, PostgreSQL):
  `osmium export -f pg` writes every node as a PostgreSQL COPY text line (EWKB point, id,
  version, changeset, uid, user, timestamp, tags as JSON); the lines stream by COPY into
  `osm_objects` itself (no history rows: a new node's row is its first version, see
  `history.py`), with the keys built afterwards by one sort each. Python touches no node,
  which is what held the per-node path back (every pyosmium attribute read is a Python
  call; nine per node cost more than the COPY).

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
import logging
import random
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Constraint, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import AddConstraint, DropConstraint

from worldbase.apps.osm.models import OSMObject
from worldbase.core.db import Base
from worldbase.geo.bulk_insert import copy_connection

log = logging.getLogger("worldbase.osm")

# Formats `osmium export` reads that are full files (diffs take the per-element path).
SNAPSHOT_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.gz", ".osm.bz2")
CHUNK = 1 << 20
# `osmium export -f pg -a …` writes the geometry, then the attributes asked for in this
# fixed order, then the tags; our column for each.
EXPORT_ATTRIBUTES = ("version", "changeset", "uid", "user", "timestamp")
EXPORT_COLUMNS = {"version": "version", "changeset": "changeset", "uid": "uid",
                  "user": "user", "timestamp": "timestamp"}  # fmt: skip
# What an attribute's 0 means in the Python path (the file carries none for that object);
# empty user names and timestamps are NULL by COPY's `NULL ''`.
ZERO_MEANS = {"version": "1", "changeset": "NULL", "uid": "NULL"}
SERVER_DEFAULTS = {"created_at": "CURRENT_TIMESTAMP", "updated_at": "CURRENT_TIMESTAMP"}


class NotPlain(Exception):
    """The file needs the per-element path (history, deletions, invalid locations)."""


@dataclass(frozen=True)
class FileInfo:
    nodes: int
    ways: int
    relations: int
    multiple_versions: bool
    ordered: bool  # nodes, then ways, then relations, each by id (what `export` expects)
    metadata_all: frozenset[str] = frozenset(EXPORT_ATTRIBUTES)  # attributes every object has
    metadata_some: frozenset[str] = frozenset(EXPORT_ATTRIBUTES)  # ... that some object has

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
    """Counts and checks the whole file; None without the binary or when `fileinfo` cannot
    tell (it also refuses valid files whose ways use nodes that are not in the file, which
    the per-element path takes from the database): the caller then reads the file itself."""
    osmium = binary()
    if osmium is None:
        return None
    code, out, err = await _run(osmium, "fileinfo", "-e", "-j", "--no-progress", str(path))
    if code != 0:
        log.info("osmium fileinfo: %s", err.decode(errors="replace").strip()[-300:])
        return None
    data = json.loads(out)["data"]
    count = data["count"]
    return FileInfo(
        nodes=int(count["nodes"]),
        ways=int(count["ways"]),
        relations=int(count["relations"]),
        multiple_versions=bool(data.get("multiple_versions")),
        ordered=bool(data.get("objects_ordered")),
        metadata_all=_attributes(data, "all_objects"),
        metadata_some=_attributes(data, "some_objects"),
    )


def _attributes(data: dict[str, Any], which: str) -> frozenset[str]:
    found = data.get("metadata", {}).get(which, {})
    return frozenset(a for a in EXPORT_ATTRIBUTES if found.get(a))


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


def _constraints() -> list[Constraint]:
    """The primary key and the unique (type, osm_id) of the objects: dropped for the
    COPY and built again after it by one sort each (create mode already dropped the other
    indexes and the history -> objects foreign key, which references the objects' key)."""
    tables = Base.metadata.tables
    objects = tables[OSMObject.__tablename__]
    unique = [c for c in objects.constraints if isinstance(c, UniqueConstraint)]
    return [objects.primary_key, *unique]


def _id_expression(sequence: str) -> str:
    return f"{_literal(_ordered_id_prefix())} || lpad(to_hex(nextval('{sequence}')), 12, '0')"


def _literal(value: str) -> str:
    """A SQL string literal of one of our own values (an id prefix, a uuid, a timestamp)."""
    if not _SAFE.fullmatch(value):
        raise ValueError(f"unexpected characters in {value!r}")
    return f"'{value}'"


_SAFE = re.compile(r"[0-9A-Za-z:+. -]*")


async def copy_nodes(
    session: AsyncSession,
    path: Path,
    *,
    info: FileInfo,
    source_id: str | None,
    now: datetime,
) -> int:
    """Writes every node of `path`; returns how many. Raises `NotPlain`
    (before anything is committed: the caller's transaction rolls back) when not every node
    of the file came out as a visible node with a location.

    The export goes straight into `osm_objects` by COPY: the columns the export does not
    carry (id, type, source, ...) come from column defaults set for this transaction only,
    attributes no object of the file has are left out (so NULL, version 1), and zeros of
    attributes only some objects have are made NULL afterwards, as the Python path does."""
    osmium = binary()
    assert osmium is not None
    connection = await session.connection()
    driver: Any = await copy_connection(session)
    objects = OSMObject.__tablename__
    for constraint in _constraints():
        await connection.execute(DropConstraint(constraint))
    # Temporary sequences for the ids (dropped below; a failure rolls their creation back).
    await driver.execute("CREATE TEMP SEQUENCE osm_copy_ids")
    ids = _id_expression("osm_copy_ids")
    stamp = _literal(now.isoformat(" "))
    defaults = {
        "id": ids,
        "type": "'node'",
        "version": "1",
        "deleted": "false",
        "source_id": "NULL" if source_id is None else _literal(source_id),
        "created_at": stamp,
        "updated_at": stamp,
    }
    await driver.execute(
        f'ALTER TABLE "{objects}" '
        + ", ".join(f'ALTER COLUMN "{c}" SET DEFAULT {v}' for c, v in defaults.items())
    )
    attributes = [a for a in EXPORT_ATTRIBUTES if a in info.metadata_some]
    process = await asyncio.create_subprocess_exec(
        osmium, "export", "-f", "pg", "-n", "--geometry-types=point",
        "-a", ",".join(["id", *attributes]), "--no-progress", "-o", "-", str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    columns = ["geom", "osm_id", *(EXPORT_COLUMNS[a] for a in attributes), "tags"]
    try:
        status = await driver.copy_to_table(
            objects, source=_stdout_chunks(process), columns=columns, format="text", null=""
        )
    finally:
        stderr = await process.stderr.read() if process.stderr else b""
        code = await process.wait()
    if code != 0:  # `fileinfo` read the file: the per-element path decides what is wrong
        raise NotPlain(f"osmium export: {stderr.decode(errors='replace').strip()[-300:]}")
    copied = int(status.split()[-1])
    if copied != info.nodes:
        raise NotPlain(f"{info.nodes - copied} of {info.nodes} nodes are not plain visible nodes")
    fixes = [
        f'"{EXPORT_COLUMNS[a]}" = {ZERO_MEANS[a]} WHERE "{EXPORT_COLUMNS[a]}" = 0'
        for a in attributes
        if a in ZERO_MEANS and a not in info.metadata_all
    ]
    for fix in fixes:
        await driver.execute(f'UPDATE "{objects}" SET {fix}')  # noqa: S608
    await driver.execute(
        f'ALTER TABLE "{objects}" '
        + ", ".join(
            f'ALTER COLUMN "{c}" DROP DEFAULT' for c in defaults if c not in SERVER_DEFAULTS
        )
        + ", "
        + ", ".join(f'ALTER COLUMN "{c}" SET DEFAULT {v}' for c, v in SERVER_DEFAULTS.items())
    )
    await driver.execute("DROP SEQUENCE osm_copy_ids")
    for constraint in _constraints():
        await connection.execute(AddConstraint(constraint))
    return copied
