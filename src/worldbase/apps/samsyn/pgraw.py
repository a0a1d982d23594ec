"""Raw asyncpg access for the hot read paths (vector tiles, bbox features) on PostgreSQL.

Why: through SQLAlchemy every statement costs ~0.8 ms of Python and a `BEGIN` round trip
(measured with cProfile), as much as a z14 tile query itself. These reads run on the
request session's own pooled connection, as text statements that asyncpg prepares once per
connection and caches; outside a transaction unless the session already opened one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def driver(session: AsyncSession) -> Any | None:
    """The session's asyncpg connection on PostgreSQL, None on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection
