"""First-load ("create") mode of file imports on PostgreSQL, like osm2pgsql's create mode.

Into an empty `osm_objects`, a whole file is imported in ONE transaction: the secondary
indexes of the objects and history tables and the history -> objects foreign key are
dropped, the batches are written (bulk COPY, per-element `ingest` for ways and relations),
then the indexes are built once (`CREATE INDEX` with a large `maintenance_work_mem`), the
foreign key re-added (one validating join instead of a lookup per row) and both tables
analysed. Index maintenance per row is most of what a bulk write costs; one sort-based build
per index is several times cheaper. PostgreSQL's DDL is transactional: a failure rolls
everything back, indexes included, and the table is empty again.

The DDL comes from the models (`Table.indexes`, the foreign key constraint), so the schema
the migrations create and this path cannot drift apart. The primary keys and the unique
(type, osm_id) constraint stay: they keep the import idempotent (a file holding a node
twice still fails the COPY and takes the per-element path, inside a savepoint).

The tables are locked (ACCESS EXCLUSIVE) until the import commits: readers of the objects
wait for it, as with osm2pgsql's create mode; imports into a non-empty table never lock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import ForeignKeyConstraint, Index, Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from worldbase.apps.osm.exceptions import CreateModeUnavailable
from worldbase.apps.osm.models import OSMObject, OSMObjectHistory
from worldbase.core.db import Base, Database

SessionFactory = Callable[[], AsyncSession]
MAINTENANCE_WORK_MEM = "512MB"  # per index build, for this transaction only
LOCK_TIMEOUT = "5s"  # a long reader or writer in the way: give up on create mode


def _tables() -> tuple[Table, Table]:
    tables = Base.metadata.tables
    return tables[OSMObject.__tablename__], tables[OSMObjectHistory.__tablename__]


def secondary_indexes() -> list[Index]:
    tables = _tables()
    return [index for table in tables for index in sorted(table.indexes, key=lambda i: str(i.name))]


def history_foreign_key() -> ForeignKeyConstraint:
    objects, history = _tables()
    return next(fk for fk in history.foreign_key_constraints if fk.referred_table is objects)


class NotEmpty(Exception):
    """`osm_objects` holds rows, or is busy: create mode does not apply."""


@asynccontextmanager
async def create_mode(db: Database) -> AsyncIterator[SessionFactory]:
    """Yields a session factory whose sessions commit to savepoints of one transaction;
    raises `NotEmpty` before anything was changed when the table is not empty or cannot
    be locked within `LOCK_TIMEOUT`."""
    async with db.engine.connect() as connection, connection.begin():
        await _prepare(connection)

        def session() -> AsyncSession:
            return AsyncSession(
                bind=connection,
                expire_on_commit=False,
                join_transaction_mode="create_savepoint",
            )

        yield session
        await _finish(connection)


async def _prepare(connection: AsyncConnection) -> None:
    await connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    objects, history = OSMObject.__tablename__, OSMObjectHistory.__tablename__
    try:
        await connection.exec_driver_sql(
            f'LOCK TABLE "{objects}", "{history}" IN ACCESS EXCLUSIVE MODE'
        )
    except DBAPIError as exc:  # lock_timeout
        raise NotEmpty(f"{objects} is busy") from exc
    found = await connection.scalar(text(f'SELECT 1 FROM "{objects}" LIMIT 1'))  # noqa: S608
    if found is not None:
        raise NotEmpty(f"{objects} is not empty")
    await connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
    await connection.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
    await connection.execute(DropConstraint(history_foreign_key()))
    for index in secondary_indexes():
        await connection.execute(DropIndex(index, if_exists=True))


async def _finish(connection: AsyncConnection) -> None:
    for index in secondary_indexes():
        await connection.execute(CreateIndex(index))
    await connection.execute(AddConstraint(history_foreign_key()))
    for table in (OSMObject.__tablename__, OSMObjectHistory.__tablename__):
        await connection.exec_driver_sql(f'ANALYZE "{table}"')


def unavailable(exc: NotEmpty) -> CreateModeUnavailable:
    return CreateModeUnavailable(f"Create mode needs an empty, idle objects table: {exc}")
