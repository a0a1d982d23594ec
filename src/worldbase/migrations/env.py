"""Alembic environment: async engine from Worldbase settings, every model's metadata."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from worldbase.core.db import Database
from worldbase.models import metadata
from worldbase.settings import Settings, get_settings


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # SQLite's R*Tree index tables (and their shadow tables) are managed by geo.spatial.
    return not (type_ == "table" and name is not None and name.startswith("rtree_"))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run(settings: Settings) -> None:
    database = Database(settings, pooled=False)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await database.dispose()


settings: Settings = context.config.attributes.get("settings") or get_settings()
asyncio.run(_run(settings))
