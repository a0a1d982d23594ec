"""Async SQLAlchemy: the declarative base, the engine for SQLite or PostgreSQL, sessions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Depends
from sqlalchemy import JSON, DateTime, MetaData, event, func, make_url
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
    connect_args = {
        # JIT compiles tile/bbox queries for 50-90 ms each and gains nothing at this size.
        "server_settings": {"jit": "off", "application_name": "worldbase"},
    }
    if not pooled:
        return create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        pool_recycle=settings.database_pool_recycle,
        connect_args=connect_args,
    )


class Database:
    """The engine and session factory of one running app (or job worker)."""

    def __init__(self, settings: Settings, *, pooled: bool = True):
        self.settings = settings
        self.engine = create_engine(settings, pooled=pooled)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

        self._read_pool: asyncpg.Pool | None = None
        self._read_pool_lock = asyncio.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def read_value(self, sql: str, *args: Any) -> Any:
        """The first value of a read-only statement, on PostgreSQL's read pool.

        Why a second pool: hot reads (a vector tile, a page of features) are one statement
        each, and a session costs a pre-ping round trip plus SQLAlchemy's checkout, about as
        much as a z14 tile query itself. asyncpg prepares `sql` once per connection. Only
        for statements that leave no session state behind (connections are not reset on
        release). A connection the server dropped is replaced and the statement retried once.
        """
        return await self._read("fetchval", sql, args)

    async def read_row(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row of a read-only statement, on the read pool (see `read_value`)."""
        return await self._read("fetchrow", sql, args)

    async def _read(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        pool = self._read_pool or await self._open_read_pool()
        for attempt in (1, 2):
            try:
                async with pool.acquire() as conn:
                    return await getattr(conn, method)(sql, *args)
            except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, OSError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _open_read_pool(self) -> asyncpg.Pool:
        if self.is_sqlite:
            raise RuntimeError("the read pool is PostgreSQL's (SQLite reads go through sessions)")
        async with self._read_pool_lock:
            if self._read_pool is None:
                url = make_url(self.settings.sqlalchemy_url).set(drivername="postgresql")
                self._read_pool = await asyncpg.create_pool(
                    url.render_as_string(hide_password=False),
                    min_size=1,
                    max_size=self.settings.database_pool_size,
                    max_inactive_connection_lifetime=self.settings.database_pool_recycle,
                    reset=_keep_session,
                    server_settings={"jit": "off", "application_name": "worldbase-read"},
                )
            return self._read_pool

    async def dispose(self) -> None:
        if self._read_pool is not None:
            await self._read_pool.close()
            self._read_pool = None
        await self.engine.dispose()


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """The read pool's release step: its statements change no session state, so the
    default reset (four statements, one more round trip per use) has nothing to undo."""


async def get_session(request: HTTPConnection) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.db
    async with database.sessionmaker() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]
