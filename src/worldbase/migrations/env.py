"""Alembic environment: async engine from Worldbase settings, every model's metadata."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from worldbase.core.db import Database
from worldbase.migrations.env_filters import include_object_for
from worldbase.models import metadata
from worldbase.settings import Settings, get_settings


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object_for(connection.dialect.name),
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
