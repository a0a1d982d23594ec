"""First-load (create) mode: indexes dropped and rebuilt from the models in one transaction
on PostgreSQL; after a success AND after a failure every index and the history foreign
key exist; idempotency unchanged; explicit create mode refuses a non-empty table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import osmium
import pytest
from fastapi.testclient import TestClient
from osmium.osm.mutable import Node
from sqlalchemy import func, inspect, select

from tests.apps.osm.conftest import OSM
from tests.builders import run_db
from worldbase.apps.osm.create import secondary_indexes
from worldbase.apps.osm.exceptions import CreateModeUnavailable
from worldbase.apps.osm.files import import_file
from worldbase.apps.osm.ingest import IngestReport
from worldbase.apps.osm.models import OSMObject, OSMObjectHistory
from worldbase.core.errors import BadInput
from worldbase.geo.spatial import skip_index_on


def _pbf(path: Path, n: int) -> Path:
    with osmium.SimpleWriter(str(path)) as writer:
        for i in range(1, n + 1):
            tags = {"amenity": "cafe"} if i % 10 == 0 else {}
            writer.add_node(Node(id=i, version=1, location=(10 + i / 1000, 50), tags=tags))
    return path


def _import(client: TestClient, path: Path, **kwargs: Any) -> IngestReport:
    db = client.app.state.services.db  # type: ignore[attr-defined]
    return client.portal.call(lambda: import_file(db, path, source_id=None, **kwargs))  # type: ignore[union-attr,no-any-return]


def _schema(client: TestClient) -> tuple[set[str], list[Any]]:
    async def read(session: Any) -> tuple[set[str], list[Any]]:
        connection = await session.connection()

        def names(sync: Any) -> tuple[set[str], list[Any]]:
            inspector = inspect(sync)
            found = {
                i["name"]
                for t in ("osm_objects", "osm_object_history")
                for i in inspector.get_indexes(t)
            }
            keys = inspector.get_foreign_keys("osm_object_history")
            return found, [k["referred_table"] for k in keys]

        return await connection.run_sync(names)  # type: ignore[no-any-return]

    return run_db(client, read)  # type: ignore[no-any-return]


def _assert_indexes(client: TestClient) -> None:
    dialect = client.app.state.services.db.engine.dialect.name  # type: ignore[attr-defined]
    expected = {i.name for i in secondary_indexes() if not skip_index_on(i, dialect)}
    assert expected >= {"ix_osm_objects_updated_at", "ix_osm_object_history_object_id_version"}
    found, referred = _schema(client)
    assert expected <= found, expected - found
    assert sorted(referred) == ["data_sources", "osm_objects"]


def _counts(client: TestClient) -> tuple[int, int]:
    async def count(session: Any) -> tuple[int, int]:
        objects = await session.scalar(select(func.count()).select_from(OSMObject))
        history = await session.scalar(select(func.count()).select_from(OSMObjectHistory))
        return objects, history

    return run_db(client, count)  # type: ignore[no-any-return]


def test_create_mode_first_load(osm: OSM, client: TestClient, tmp_path: Path) -> None:
    path = _pbf(tmp_path / "a.osm.pbf", 120)
    report = _import(client, path, create=True)
    assert (report.created, report.rejected) == (120, 0)
    assert _counts(client) == (120, 0)  # bulk-written nodes: no history rows (history.py)
    _assert_indexes(client)
    found = client.get("/objects?bbox=10.0,49.9,10.0505,50.1&tag=amenity=cafe").json()
    assert sorted(int(o["osm_id"]) for o in found) == [10, 20, 30, 40, 50]
    # Idempotent as ever: not empty any more, so the usual path, and nothing changes.
    assert _import(client, path).unchanged == 120
    if client.app.state.services.db.is_sqlite:  # type: ignore[attr-defined]
        assert _import(client, path, create=True).unchanged == 120  # the usual path
    else:
        with pytest.raises(CreateModeUnavailable):
            _import(client, path, create=True)
    assert _counts(client) == (120, 0)  # bulk-written nodes: no history rows (history.py)
    _assert_indexes(client)


def test_a_failed_create_mode_import_restores_the_indexes(
    osm: OSM, client: TestClient, tmp_path: Path
) -> None:
    path = _pbf(tmp_path / "a.osm.pbf", 50)

    async def fail(fraction: float, message: str) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        _import(client, path, progress=fail)
    _assert_indexes(client)
    if not client.app.state.services.db.is_sqlite:  # type: ignore[attr-defined]
        assert _counts(client) == (0, 0)  # one transaction: nothing was kept
    # The next import works (in create mode again on PostgreSQL; SQLite kept the batch).
    again = _import(client, path)
    assert again.created + again.unchanged == 50
    assert _counts(client) == (50, 0)
    _assert_indexes(client)


def test_create_mode_is_for_full_files(client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "a.osc"
    path.write_text("<osmChange version='0.6'></osmChange>")
    with pytest.raises(BadInput, match="full files"):
        _import(client, path, create=True)
