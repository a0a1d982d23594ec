"""The database helpers: PostgreSQL's read pool (`Database.read_value`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest

from worldbase.core.db import Database
from worldbase.settings import Settings


def test_the_read_pool_survives_dropped_connections(
    make_settings: Callable[..., Settings], postgres_url: str
) -> None:
    settings = make_settings(database_url=postgres_url)  # both runs: it is PostgreSQL's

    async def go() -> None:
        db = Database(settings)
        try:
            assert await db.read_value("SELECT $1::int + 1", 41) == 42
            assert await db.read_value("SHOW jit") == "off"
            row = await db.read_row("SELECT 1 AS a, 'b' AS b WHERE $1::bool", True)
            assert row is not None and tuple(row) == (1, "b")
            assert await db.read_row("SELECT 1 WHERE $1::bool", False) is None
            # The server drops every read connection (a restart, a failover, an idle
            # timeout): the next statement is retried on a new one, not failed.
            admin = await asyncpg.connect(postgres_url)
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'worldbase-read' AND datname = current_database()"
                )
            finally:
                await admin.close()
            assert killed >= 1
            await asyncio.sleep(0.1)
            assert await db.read_value("SELECT 'again'") == "again"
            # Statement errors are the caller's, not retried into something else.
            with pytest.raises(asyncpg.PostgresError):
                await db.read_value("SELECT 1/0")
        finally:
            await db.dispose()

    asyncio.run(go())


def test_sqlite_has_no_read_pool(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(database_url=None)
    db = Database(settings)

    async def go() -> None:
        try:
            with pytest.raises(RuntimeError, match="PostgreSQL"):
                await db.read_value("SELECT 1")
        finally:
            await db.dispose()

    asyncio.run(go())
