"""The fast path of file imports: new nodes written in bulk.

Nodes are most of any OSM file and, in a full file, need nothing from other objects, so
they skip the per-object path (`Ingestor`): the batch's ids are looked up once, the nodes
not stored yet are written with binary COPY (PostgreSQL, asyncpg) or one `executemany`
(SQLite), in the caller's transaction. Their `create` history entries are not written: a
new node's row is its first version (see `history.py`). The semantics stay those of
`ingest` (idempotent by type, osm_id and version):
- a node stored with the same or a newer version is `unchanged`;
- every other stored node (a newer version, or a file without versions) and every node
  of a source with a tag filter or an area goes back to the caller for `ingest`;
- a batch holding the same node twice (a history file) goes to `ingest` whole.
A concurrent writer inserting one of the same nodes makes the COPY fail on the unique
(type, osm_id) constraint: the caller rolls back and hands the batch to `ingest`.
"""

from __future__ import annotations

import json
import struct
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
from shapely.geometry import Point
from sqlalchemy import String, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.osm.ingest import IngestReport
from worldbase.apps.osm.models import DataSource, OSMObject
from worldbase.apps.osm.parsing import Element
from worldbase.core.ids import time_ordered_uuids
from worldbase.geo.bulk_insert import copy_connection
from worldbase.geo.spatial import rtree_name

# (osm_id, version, tags, lon, lat, timestamp, changeset, user, uid), as read from the file.
NodeRow = tuple[int, int | None, dict[str, str], float, float, datetime | None, Any, Any, Any]

_OBJECT_COLUMNS = (
    "id", "osm_id", "type", "tags", "geom", "source_id", "version", "timestamp",
    "changeset", "user", "uid", "deleted", "created_at", "updated_at",
)  # fmt: skip
_WKB_POINT = struct.Struct("<BIdd")  # little-endian ISO WKB point
_EWKB_POINT = struct.Struct("<BIIdd")  # with the SRID flag and 4326: geometry's binary input
_EWKB_SRID_FLAG = 0x20000001


def applies(source: DataSource | None) -> bool:
    """Area and tag filters are decided per element by `ingest`."""
    return source is None or (not source.tag_filter and not source.area)


def as_element(row: NodeRow) -> Element:
    osm_id, version, tags, lon, lat, timestamp, changeset, user, uid = row
    return Element(
        type="node",
        osm_id=str(osm_id),
        version=version,
        tags=tags,
        geom=Point(lon, lat),
        timestamp=timestamp,
        changeset=changeset,
        user=user,
        uid=uid,
    )


async def any_node_stored(session: AsyncSession) -> bool:
    found = await session.scalar(select(OSMObject.id).where(OSMObject.type == "node").limit(1))
    return found is not None


async def any_object_stored(session: AsyncSession) -> bool:
    return await session.scalar(select(OSMObject.id).limit(1)) is not None


async def _stored_versions(session: AsyncSession, ids: list[str]) -> dict[str, int]:
    """osm_id -> stored version of the batch's nodes, in one query."""
    if session.get_bind().dialect.name == "postgresql":
        query = text(
            "SELECT osm_id, version FROM osm_objects WHERE type = 'node' AND osm_id = ANY(:ids)"
        ).bindparams(bindparam("ids", type_=ARRAY(String)))
        rows = await session.execute(query, {"ids": ids})
    else:
        query = text(
            "SELECT osm_id, version FROM osm_objects WHERE type = 'node' "
            "AND osm_id IN (SELECT value FROM json_each(:ids))"
        )
        rows = await session.execute(query, {"ids": json.dumps(ids)})
    return {osm_id: version for osm_id, version in rows}


def as_elements(rows: list[tuple[int, NodeRow]]) -> list[tuple[int, Element]]:
    return [(index, as_element(row)) for index, row in rows]


async def store_nodes(
    session: AsyncSession,
    rows: list[tuple[int, NodeRow]],
    *,
    source: DataSource | None,
    now: datetime,
    lookup: bool = True,
) -> tuple[IngestReport, list[tuple[int, Element]]]:
    """Write the new nodes of `rows` (each with its index in the file); returns what was
    done and the rows left for `ingest`, as elements. `lookup=False` (no node was stored
    when the import began) takes every node for new: if another writer stored one since,
    the unique constraint fails the write and the caller falls back to `ingest`."""
    report = IngestReport()
    ids = [str(row[0]) for _, row in rows]
    if not applies(source) or len(set(ids)) != len(ids):
        return report, as_elements(rows)
    stored = await _stored_versions(session, ids) if lookup else {}
    fresh: list[NodeRow] = []
    rest: list[tuple[int, Element]] = []
    for osm_id, (index, row) in zip(ids, rows, strict=True):
        version = stored.get(osm_id)
        if version is None:
            fresh.append(row)
        elif row[1] is not None and row[1] <= version:
            report.unchanged += 1
        else:
            rest.append((index, as_element(row)))
    report.received = len(rows) - len(rest)
    if fresh:
        await _write(session, fresh, source_id=source.id if source else None, now=now)
        report.created = len(fresh)
    return report, rest


async def _write(
    session: AsyncSession, rows: list[NodeRow], *, source_id: str | None, now: datetime
) -> None:
    postgres = session.get_bind().dialect.name == "postgresql"
    object_ids = time_ordered_uuids(len(rows))  # the primary key grows at its end
    stamp = now if postgres else _sqlite_datetime(now)
    objects: list[tuple[Any, ...]] = []
    for row, object_id in zip(rows, object_ids, strict=True):
        osm_id, version, tags, lon, lat, timestamp, changeset, user, uid = row
        tags_json = json.dumps(tags) if tags else "{}"
        when: Any
        if postgres:
            geom = _EWKB_POINT.pack(1, _EWKB_SRID_FLAG, 4326, lon, lat)
            when = timestamp
        else:
            geom = _WKB_POINT.pack(1, 1, lon, lat)
            when = None if timestamp is None else _sqlite_datetime(timestamp)
        objects.append(
            (object_id, str(osm_id), "node", tags_json, geom, source_id, version or 1, when,
             changeset, user, uid, False, stamp, stamp)
        )  # fmt: skip
    if postgres:
        await _copy(session, OSMObject.__tablename__, _OBJECT_COLUMNS, objects)
    else:
        await _sqlite_objects(session, objects, [(row[3], row[4]) for row in rows])


def _sqlite_datetime(value: datetime) -> str:
    # How SQLAlchemy's SQLite DateTime stores values (all of ours are UTC).
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _float32_outward(values: np.ndarray, direction: int) -> np.ndarray:
    """float32 values rounded down (-1) or up (1), as `geo.rtree` stores R*Tree boxes."""
    rounded = values.astype(np.float32)
    off = (rounded.astype(np.float64) - values) * direction < 0
    rounded[off] = np.nextafter(rounded[off], np.float32(direction * np.inf))
    return rounded.astype(np.float64)


async def _sqlite_objects(
    session: AsyncSession, records: list[tuple[Any, ...]], points: list[tuple[float, float]]
) -> None:
    """Insert the objects and their R*Tree boxes. The R*Tree's insert trigger calls Python
    for every row (120 us of the 135 a row costs): for this statement it is dropped and made
    again, inside the transaction (SQLite's DDL is transactional, and the write lock keeps
    every other writer out), and the boxes are computed for the whole batch at once."""
    table = OSMObject.__tablename__
    rtree = rtree_name(table, "geom")
    connection = await session.connection()
    # A DML statement first: the driver opens the transaction on DML, not on DDL.
    await connection.exec_driver_sql(f'UPDATE "{table}" SET id = id WHERE 0')  # noqa: S608
    trigger = (
        await connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
            (f"{rtree}_insert",),
        )
    ).scalar()
    last = (
        await connection.exec_driver_sql(f'SELECT coalesce(max(rowid), 0) FROM "{table}"')  # noqa: S608
    ).scalar()
    if trigger is None:  # not ours to bypass: let SQLite do it row by row
        await _executemany(session, table, _OBJECT_COLUMNS, records)
        return
    await connection.exec_driver_sql(f'DROP TRIGGER "{rtree}_insert"')
    await _executemany(session, table, _OBJECT_COLUMNS, records)
    result: Any = await connection.exec_driver_sql(
        f'SELECT id, rowid FROM "{table}" WHERE rowid > ?',  # noqa: S608
        (last,),
    )
    rowids = {object_id: rowid for object_id, rowid in result}
    xy = np.array(points, dtype=np.float64).reshape(-1, 2)
    minx, maxx = _float32_outward(xy[:, 0], -1), _float32_outward(xy[:, 0], 1)
    miny, maxy = _float32_outward(xy[:, 1], -1), _float32_outward(xy[:, 1], 1)
    boxes = zip(
        [rowids[record[0]] for record in records],
        minx.tolist(),
        maxx.tolist(),
        miny.tolist(),
        maxy.tolist(),
        strict=True,
    )
    await connection.exec_driver_sql(
        f'INSERT INTO "{rtree}" (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)',  # noqa: S608
        list(boxes),
    )
    await connection.exec_driver_sql(trigger)


async def _executemany(
    session: AsyncSession, table: str, columns: tuple[str, ...], records: list[tuple[Any, ...]]
) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    connection = await session.connection()
    await connection.exec_driver_sql(
        f'INSERT INTO "{table}" ({names}) VALUES ({marks})',  # noqa: S608  (our constants)
        records,
    )


async def _copy(
    session: AsyncSession, table: str, columns: tuple[str, ...], records: list[tuple[Any, ...]]
) -> None:
    driver = await copy_connection(session)
    try:
        await driver.copy_records_to_table(table, records=records, columns=list(columns))
    except asyncpg.UniqueViolationError as exc:  # the driver's own: say it as SQLAlchemy does
        raise IntegrityError(f"COPY {table}", None, exc) from exc
