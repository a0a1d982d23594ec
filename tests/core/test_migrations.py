"""`alembic upgrade head` on an empty database yields the models' schema; downgrade works."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from tests.conftest import base_settings, create_pg_database
from worldbase.core.db import Database
from worldbase.core.migrate import downgrade_base, upgrade_head
from worldbase.migrations.env_filters import include_object_for
from worldbase.models import metadata
from worldbase.settings import Settings


def _diff_and_tables(settings: Settings) -> tuple[list[Any], set[str]]:
    async def run() -> tuple[list[Any], set[str]]:
        database = Database(settings, pooled=False)
        try:
            async with database.engine.connect() as conn:

                def inspect_sync(sync_conn: Any) -> tuple[list[Any], set[str]]:
                    context = MigrationContext.configure(
                        sync_conn,
                        opts={
                            "include_object": include_object_for(sync_conn.dialect.name),
                            "compare_type": True,
                        },
                    )
                    diff = compare_metadata(context, metadata)
                    return diff, set(inspect(sync_conn).get_table_names())

                return await conn.run_sync(inspect_sync)
        finally:
            await database.dispose()

    return asyncio.run(run())


def _check_round_trip(settings: Settings) -> None:
    upgrade_head(settings)
    diff, tables = _diff_and_tables(settings)
    assert diff == [], f"migrations and models differ: {diff}"
    assert {t.name for t in metadata.sorted_tables} <= tables
    downgrade_base(settings)
    _, tables = _diff_and_tables(settings)
    leftover = {t for t in tables if t != "alembic_version" and not t.startswith("spatial_ref_sys")}
    assert leftover == set(), f"downgrade left tables behind: {leftover}"
    upgrade_head(settings)  # and up again, after a full downgrade
    diff, _ = _diff_and_tables(settings)
    assert diff == []


def test_sqlite_upgrade_matches_models_and_downgrades(tmp_path: Path) -> None:
    _check_round_trip(base_settings(tmp_path / "data"))


@pytest.mark.postgres
def test_postgres_upgrade_matches_models_and_downgrades(tmp_path: Path) -> None:
    url = create_pg_database(f"worldbase_migrations_{uuid.uuid4().hex[:8]}")
    _check_round_trip(base_settings(tmp_path / "data", database_url=url))
