"""Async SQLAlchemy: the declarative base, the engine for SQLite or PostgreSQL, sessions."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import JSON, DateTime, MetaData, event, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeEngine
from sqlalchemy.util.concurrency import await_
from starlette.requests import HTTPConnection

from worldbase.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSONType}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # geo.rtree adds its SQL functions to every SQLite connection itself (core knows no geo).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(settings: Settings, *, pooled: bool = True) -> AsyncEngine:
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    connect_args: dict[str, Any] = {
        # JIT compiles tile/bbox queries for 50-90 ms each and gains nothing at this size.
        "server_settings": {"jit": "off", "application_name": "worldbase"},
        # A server that is down or restarting refuses fast; one that does not answer must
        # not hold a request (or a job's claim) longer than this.
        "timeout": settings.worldbase_db_connect_timeout,
    }
    if not pooled:  # jobs and the reaper: long statements are theirs to make
        return create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
    if settings.worldbase_db_command_timeout > 0:
        # Client-side, so a request on a connection whose server went silent ends too.
        connect_args["command_timeout"] = settings.worldbase_db_command_timeout
    engine = create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        pool_recycle=settings.database_pool_recycle,
        connect_args=connect_args,
    )
    engine.dialect.do_ping = _ping_once  # type: ignore[method-assign]
    return engine


def _ping_once(dbapi_connection: Any) -> bool:
    """The pool's pre-ping in one round trip (`;`). SQLAlchemy's asyncpg ping wraps it in
    BEGIN and ROLLBACK (for pgbouncer's transaction mode, which Worldbase's prepared
    statements rule out anyway): three round trips on every checkout, more than a z14 tile
    query, measured as 4x fewer tiles/s under load. A dropped connection still fails the
    ping and is replaced."""
    try:
        await_(dbapi_connection.driver_connection.fetchrow(";"))
    except Exception as error:
        dbapi_connection._handle_exception(error)  # as a DBAPI error: the pool sees a disconnect
    return True


class Database:
    """The engine and session factory of one running app (or job worker)."""

    def __init__(self, settings: Settings, *, pooled: bool = True):
        self.settings = settings
        self.engine = create_engine(settings, pooled=pooled)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.engine.dispose()


# --- Raw reads -------------------------------------------------------------------------------
# The one way to run hand-written SQL on a request's hot path (a vector tile, a page of
# features). Why: through SQLAlchemy's execute every statement costs ~0.8 ms of Python and a
# `BEGIN` round trip, as much as a z14 tile query itself. These run on the session's own
# pooled connection: on PostgreSQL straight on its asyncpg connection, which prepares each
# text once per connection and caches it, outside a transaction unless the session already
# began one; on SQLite through the session (`$1`, `$2`... become bound parameters).
# Statements are read-only: the session's transaction state is left as it was. Values come
# back as the driver gives them (JSON as text, SQLite's UUIDs as hex text).

_PARAMETER = re.compile(r"\$(\d+)")


async def fetch_row(session: AsyncSession, sql: str, *args: Any) -> Sequence[Any] | None:
    """The first row of `sql` (parameters `$1`, `$2`...) on the session's connection."""
    connection = await _asyncpg_connection(session)
    if connection is not None:
        row: Sequence[Any] | None = await connection.fetchrow(sql, *args)
        return row
    statement = text(_PARAMETER.sub(r":p\1", sql))
    # UUIDs bound as SQLAlchemy stores them on SQLite (32 hex digits).
    params = {
        f"p{i}": value.hex if isinstance(value, uuid.UUID) else value
        for i, value in enumerate(args, start=1)
    }
    return (await session.execute(statement, params)).first()


async def fetch_value(session: AsyncSession, sql: str, *args: Any) -> Any:
    """The first value of the first row of `sql` (None without rows); see `fetch_row`."""
    row = await fetch_row(session, sql, *args)
    return None if row is None else row[0]


async def _asyncpg_connection(session: AsyncSession) -> Any | None:
    """The session's asyncpg connection on PostgreSQL, None on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def get_session(request: HTTPConnection) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.db
    async with database.sessionmaker() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]
