"""The database helpers: raw reads on a session's connection (`fetch_row`, `fetch_value`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest
from sqlalchemy import text

from worldbase.core.db import Database, _asyncpg_connection, fetch_row, fetch_value
from worldbase.settings import Settings


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_raw_reads_run_on_the_sessions_own_connection(
    make_settings: Callable[..., Settings], request: pytest.FixtureRequest, engine: str
) -> None:
    url = request.getfixturevalue("postgres_url") if engine == "postgresql" else None
    settings = make_settings(database_url=url)  # both runs: each engine is tested

    async def go() -> None:
        db = Database(settings)
        try:
            async with db.sessionmaker() as session:
                assert await fetch_value(session, "SELECT $1 + 1", 41) == 42
                row = await fetch_row(session, "SELECT 1 AS a, $1 AS b WHERE $2", "b", True)
                assert row is not None and tuple(row) == (1, "b")
                assert await fetch_row(session, "SELECT 1 WHERE $1", False) is None
                assert await fetch_value(session, "SELECT 1 WHERE $1", False) is None
                if engine == "postgresql":
                    assert await fetch_value(session, "SHOW jit") == "off"
                    # No BEGIN is sent for a raw read: it runs outside a transaction.
                    raw = await _asyncpg_connection(session)
                    assert raw is not None and not raw.is_in_transaction()
                # What the session did on its connection is visible: the same connection.
                await session.execute(text("CREATE TEMPORARY TABLE wb_raw_t (n integer)"))
                await session.execute(text("INSERT INTO wb_raw_t VALUES (7)"))
                assert await fetch_value(session, "SELECT n FROM wb_raw_t WHERE n = $1", 7) == 7
                await session.rollback()
        finally:
            await db.dispose()

    asyncio.run(go())


def test_a_dropped_connection_is_replaced_at_checkout(
    make_settings: Callable[..., Settings], postgres_url: str
) -> None:
    """The pool's one-round-trip pre-ping (`core.db._ping_once`) sees a connection the server
    dropped (a restart, a failover, an idle timeout) and opens a new one: no request fails."""
    settings = make_settings(database_url=postgres_url)  # both runs: it is PostgreSQL's

    async def go() -> None:
        db = Database(settings)
        try:
            async with db.sessionmaker() as session:
                before = await fetch_value(session, "SELECT pg_backend_pid()")
            admin = await asyncpg.connect(postgres_url)
            try:
                await admin.execute("SELECT pg_terminate_backend($1)", before)
            finally:
                await admin.close()
            await asyncio.sleep(0.1)
            async with db.sessionmaker() as session:
                after = await fetch_value(session, "SELECT pg_backend_pid()")
                assert after != before
                assert await fetch_value(session, "SELECT $1::int + 1", 1) == 2
        finally:
            await db.dispose()

    asyncio.run(go())
