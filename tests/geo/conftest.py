"""Engines for the spatial tests: a SQLite file and the session's PostGIS database.

The tests are synchronous and drive both async engines on one event loop per module
(hypothesis cannot drive async tests); every table they create has a unique name.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from sqlalchemy import Column, Integer, MetaData, Table
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import base_settings
from worldbase.core.db import create_engine
from worldbase.geo.spatial import Geometry, spatial_index

T = TypeVar("T")


@dataclass
class Backend:
    name: str
    engine: AsyncEngine
    runner: asyncio.Runner

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def create(self, metadata: MetaData) -> None:
        async def go() -> None:
            async with self.engine.begin() as conn:
                await conn.run_sync(metadata.create_all)

        self.run(go())

    def drop(self, metadata: MetaData) -> None:
        async def go() -> None:
            async with self.engine.begin() as conn:
                await conn.run_sync(metadata.drop_all)

        self.run(go())


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture(scope="module")
def sqlite_backend(
    runner: asyncio.Runner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    engine = create_engine(base_settings(tmp_path_factory.mktemp("geo")))
    yield Backend("sqlite", engine, runner)
    runner.run(engine.dispose())


@pytest.fixture(scope="module")
def pg_backend(
    runner: asyncio.Runner, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    settings = base_settings(tmp_path_factory.mktemp("geo-pg"), database_url=postgres_url)
    engine = create_engine(settings, pooled=False)
    yield Backend("postgresql", engine, runner)
    runner.run(engine.dispose())


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    fixture = "sqlite_backend" if request.param == "sqlite" else "pg_backend"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def geometry_table(metadata: MetaData, name: str, geometry_type: str = "GEOMETRY") -> Table:
    """A small table with an integer id, a geometry and a label, GiST/R*Tree indexed."""
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("geom", Geometry(geometry_type), nullable=True),
        Column("label", Integer, nullable=True),
        spatial_index(name, "geom"),
    )
