"""Writing many rows fast: binary COPY on PostgreSQL, executemany on SQLite.

`bulk_insert_features` is the whole; `prepare_rows` (CPU, may run in a thread) and
`insert_prepared` (I/O) are its two halves, and `read_ahead` runs a reader in a worker
thread, so that reading and encoding overlap the writes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import orjson
import shapely
from sqlalchemy import JSON, Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from worldbase.core.ids import time_ordered_uuids
from worldbase.geo.spatial import Geometry

T = TypeVar("T")


async def bulk_insert_features(
    session: AsyncSession, table: Table, rows: Iterable[Mapping[str, Any]], *, chunk: int = 50_000
) -> int:
    """Insert many rows (geometry columns as shapely geometries) in the session's transaction.

    Every row has the keys of the first one. Values go through the columns' bind processors
    column by column; Python-side defaults are applied here (a callable default of a UUID
    column is taken to mean random ids: version-4 UUIDs made in bulk), server defaults by
    the server.
    PostgreSQL: binary COPY through asyncpg. SQLite: one driver-level executemany (the R*Tree
    triggers still run per row). Returns the number of rows.
    """
    dialect = session.get_bind().dialect
    count = 0
    batch: list[Mapping[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            count += await insert_prepared(session, prepare_rows(table, batch, dialect))
            batch = []
    if batch:
        count += await insert_prepared(session, prepare_rows(table, batch, dialect))
    return count


@dataclass(frozen=True, slots=True)
class PreparedRows:
    """Rows encoded for the driver by `prepare_rows`; written by `insert_prepared`."""

    table: Table
    columns: list[str]
    records: list[tuple[Any, ...]]
    dialect: Dialect


def prepare_rows(table: Table, rows: Sequence[Mapping[str, Any]], dialect: Dialect) -> PreparedRows:
    """The CPU half of `bulk_insert_features` (same rules), without I/O: it may run in a
    worker thread while the event loop writes the previous batch."""
    # Column-wise: the keys of the first row, plus the columns with Python-side defaults.
    names = list(rows[0])
    defaults = [
        c
        for c in table.columns
        if c.name not in names and c.default is not None and not c.default.is_sequence
    ]
    columns = [table.c[name] for name in names] + defaults
    values: list[list[Any]] = [[row.get(name) for row in rows] for name in names]
    fresh_ids: set[int] = set()
    for column in defaults:
        default: Any = column.default
        if default.is_callable and isinstance(column.type, Uuid):
            # uuid4() one by one costs more than the COPY itself: ids made in bulk.
            fresh_ids.add(len(values))
            values.append(time_ordered_uuids(len(rows), hyphens=False))
        elif default.is_callable:
            values.append([default.arg(None) for _ in rows])
        else:
            values.append([default.arg] * len(rows))
    postgres = dialect.name == "postgresql"
    for j, column in enumerate(columns):
        if j in fresh_ids:
            continue  # 32 hex digits: what asyncpg takes, and how SQLite stores a Uuid
        if isinstance(column.type, Geometry):
            geoms = np.array(values[j], dtype=object)
            if postgres:  # EWKB with the SRID, what geometry's binary input expects
                geoms = shapely.set_srid(geoms, 4326)
                values[j] = list(shapely.to_wkb(geoms, include_srid=True, flavor="extended"))
            else:
                values[j] = list(shapely.to_wkb(shapely.force_2d(geoms)))
            continue
        if postgres and isinstance(column.type.dialect_impl(dialect), JSON):
            # asyncpg takes JSON text; orjson writes it ~5x faster than the JSON type's json.dumps.
            values[j] = [_json_text(v) for v in values[j]]
            continue
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            values[j] = [process(v) for v in values[j]]
    records = list(zip(*values, strict=True))
    return PreparedRows(table, [c.name for c in columns], records, dialect)


async def insert_prepared(session: AsyncSession, prepared: PreparedRows) -> int:
    """Write rows from `prepare_rows` in the session's transaction (COPY or executemany)."""
    table, columns, records = prepared.table, prepared.columns, prepared.records
    if prepared.dialect.name != "postgresql":
        connection = await session.connection()
        quote = prepared.dialect.identifier_preparer.quote
        statement = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        await connection.exec_driver_sql(statement, records)
        return len(records)
    driver = await copy_connection(session)
    await driver.copy_records_to_table(
        table.name, records=records, columns=columns, schema_name=table.schema
    )
    return len(records)


async def read_ahead(items: Iterator[T]) -> AsyncGenerator[T, None]:
    """`items` advanced in a worker thread, one item ahead: the next item is made while the
    consumer handles this one (at most two items alive, whatever the iterator's length).

    Use it under `contextlib.aclosing`: when the consumer stops early or fails, the thread
    finishes the step in flight, closes `items` and exits before this generator returns, so
    nothing keeps reading the caller's files afterwards. The iterator's exceptions are
    raised to the consumer.
    """
    loop = asyncio.get_running_loop()
    # One thread: the steps, and the final close, run in order on the same iterator.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
    pending = loop.run_in_executor(worker, _step, items)
    try:
        while (step := await pending) is not None:
            pending = loop.run_in_executor(worker, _step, items)
            yield step[0]
    finally:
        pending.cancel()  # a step in flight is not wanted any more, nor its error
        closed = worker.submit(_close, items)  # queued behind that step if it runs
        worker.shutdown(wait=False)
        # Shielded: a second cancellation must not take the close out of the queue.
        await asyncio.shield(asyncio.wrap_future(closed))
        worker.shutdown(wait=True)  # the thread exits once the close is done


def _step(items: Iterator[T]) -> tuple[T] | None:
    for item in items:
        return (item,)
    return None


def _close(items: Iterator[Any]) -> None:
    close = getattr(items, "close", None)
    if close is not None:
        close()


def _json_text(value: Any) -> str:
    # None is JSON null, as the JSON type writes it (none_as_null=False).
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson refuses (non-string keys, big ints): as the JSON type does
        return json.dumps(value)


async def copy_connection(session: AsyncSession) -> Any:
    """The session's asyncpg connection, in its transaction, ready for binary COPY of
    geometry columns (EWKB bytes or hex). PostgreSQL only."""
    connection = await session.connection()
    await connection.execute(text("SELECT 1"))  # the adapter opens its transaction lazily
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not raw.info.get("wb_geometry_codec"):
        await _register_geometry_codec(driver)
        raw.info["wb_geometry_codec"] = True
    return driver


async def _register_geometry_codec(driver: Any) -> None:
    # COPY is binary-only in asyncpg: geometry gets a binary codec (EWKB in, and out the same
    # hex text the default text codec gives, so other queries on this connection see no change).
    schema = await driver.fetchval(
        "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE t.typname = 'geometry' LIMIT 1"
    )
    await driver.set_type_codec(
        "geometry",
        schema=schema or "public",
        encoder=lambda value: bytes.fromhex(value) if isinstance(value, str) else bytes(value),
        decoder=lambda data: bytes(data).hex().upper(),
        format="binary",
    )
