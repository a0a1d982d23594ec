"""The osmium-tool path of a first load (PostgreSQL, create mode): the same rows as the
Python path, ways and relations still built from the file, and the per-element path for
files that are not plain snapshots. On SQLite the Python path is always taken."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import osmium
import pytest
from fastapi.testclient import TestClient
from osmium.osm.mutable import Node, Relation, Way
from sqlalchemy import select

from tests.apps.osm.conftest import OSM
from tests.builders import run_db
from tests.conftest import service_missing
from worldbase.apps.osm import osmium_tool
from worldbase.apps.osm.files import import_file
from worldbase.apps.osm.ingest import IngestReport
from worldbase.apps.osm.models import OSMObject, OSMObjectHistory
from worldbase.core.errors import BadInput


def _write(
    path: Path, nodes: Sequence[Node], ways: Sequence[Way] = (), relations: Sequence[Relation] = ()
) -> Path:
    with osmium.SimpleWriter(str(path)) as writer:
        for node in nodes:
            writer.add_node(node)
        for way in ways:
            writer.add_way(way)
        for relation in relations:
            writer.add_relation(relation)
    return path


def _nodes() -> list[Node]:
    nodes = []
    for i in range(1, 61):
        metadata: dict[str, Any] = {}
        if i % 2:  # half with full metadata, half with none (version 0, no user, no time)
            metadata = {"version": 3, "changeset": 700 + i, "uid": 9, "user": "mapper\t\\x",
                        "timestamp": "2024-02-03T04:05:06Z"}  # fmt: skip
        tags = {"amenity": "cafe", "name": f'Caf\u00e9 "{i}"\\'} if i % 5 == 0 else {}
        nodes.append(Node(id=i, location=(10 + i / 100, 50 + i / 200), tags=tags, **metadata))
    return nodes


def _import(client: TestClient, path: Path) -> IngestReport:
    db = client.app.state.services.db  # type: ignore[attr-defined]
    return client.portal.call(lambda: import_file(db, path, source_id=None))  # type: ignore[union-attr,no-any-return]


def _rows(client: TestClient) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async def read(session: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        objects = await session.execute(
            select(
                OSMObject.type, OSMObject.osm_id, OSMObject.version, OSMObject.tags,
                OSMObject.timestamp, OSMObject.changeset, OSMObject.user, OSMObject.uid,
                OSMObject.deleted, OSMObject.refs,
            ).order_by(OSMObject.type, OSMObject.osm_id)
        )  # fmt: skip
        geoms = await session.execute(
            select(OSMObject.osm_id, OSMObject.geom).order_by(OSMObject.type, OSMObject.osm_id)
        )
        history = await session.execute(
            select(
                OSMObject.osm_id, OSMObjectHistory.action, OSMObjectHistory.version,
                OSMObjectHistory.tags, OSMObjectHistory.geom_wkb, OSMObjectHistory.timestamp,
                OSMObjectHistory.changeset, OSMObjectHistory.user,
            )
            .join(OSMObject, OSMObject.id == OSMObjectHistory.object_id)
            .order_by(OSMObject.type, OSMObject.osm_id)
        )  # fmt: skip
        rows = [(*row, geom and geom.wkt) for row, (_, geom) in zip(objects, geoms, strict=True)]
        return rows, [tuple(row) for row in history]

    return run_db(client, read)  # type: ignore[no-any-return]


@pytest.fixture
def osmium_installed(client: TestClient) -> None:
    """On SQLite both imports take the Python path: the same assertions hold."""
    if not osmium_tool.binary():
        service_missing("osmium-tool (.ci/run installs it)")


def _truncate(client: TestClient) -> None:
    from tests.conftest import truncate_all

    client.portal.call(truncate_all, client.app.state.services)  # type: ignore[union-attr,attr-defined]


def test_the_osmium_tool_path_stores_what_the_python_path_stores(
    osmium_installed: None, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ways = [Way(id=1, nodes=[1, 2, 3], tags={"highway": "path"}, version=2),
            Way(id=2, nodes=[4, 5, 6, 7, 4], tags={"building": "yes"}, version=1)]  # fmt: skip
    relation = Relation(id=1, members=[("w", 2, "outer")], tags={"type": "multipolygon"}, version=1)
    path = _write(tmp_path / "a.osm.pbf", _nodes(), ways, [relation])
    objects, history = _same_rows_both_ways(client, path, monkeypatch, 63)
    cafe = next(row for row in objects if row[:2] == ("node", "5"))
    assert cafe[2:8] == (
        3,
        {"amenity": "cafe", "name": 'Café "5"\\'},
        cafe[4],
        705,
        "mapper\t\\x",
        9,
    )
    bare = next(row for row in objects if row[:2] == ("node", "2"))
    assert bare[2:8] == (1, {}, None, None, None, None)
    assert {row[0] for row in objects} == {"node", "way", "relation"}
    # Rows for the ways and the relation: a bulk-written node's row is its first version.
    assert sorted(row[1:3] for row in history) == [("create", 1), ("create", 1), ("create", 2)]


def _same_rows_both_ways(
    client: TestClient, path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    fast = _import(client, path)
    assert (fast.created, fast.rejected) == (count, 0)
    fast_rows = _rows(client)
    _truncate(client)
    with monkeypatch.context() as patch:
        patch.setattr(osmium_tool, "binary", lambda: None)
        slow = _import(client, path)
    assert (slow.created, slow.rejected) == (count, 0)
    assert _rows(client) == fast_rows
    _truncate(client)
    return fast_rows


def test_files_without_metadata_or_with_all_of_it(
    osmium_installed: None, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = [Node(id=i, location=(1 + i / 10, 2), tags={"n": str(i)}) for i in range(1, 21)]
    objects, _ = _same_rows_both_ways(
        client, _write(tmp_path / "bare.osm.pbf", bare), monkeypatch, 20
    )
    assert all(row[2:8] == (1, row[3], None, None, None, None) for row in objects)
    full = [n for n in _nodes() if n.version]
    objects, _ = _same_rows_both_ways(client, _write(tmp_path / "full.osm", full), monkeypatch, 30)
    assert {(row[2], row[6], row[7]) for row in objects} == {(3, "mapper\t\\x", 9)}


def test_files_that_are_not_plain_snapshots_take_the_per_element_path(
    osmium_installed: None, client: TestClient, tmp_path: Path
) -> None:
    # A node without a location: osmium-tool would skip it silently; the per-element path
    # rejects it into the validation log, and the rest is stored.
    nodes = [*_nodes()[:10], Node(id=99, version=2, tags={"name": "nowhere"})]
    path = _write(tmp_path / "no-location.osm", nodes)
    report = _import(client, path)
    assert (report.created, report.rejected) == (10, 1)
    assert "no valid location" in report.errors[0]["reason"]
    assert client.get("/objects/osm/node/99").status_code == 404
    assert client.get("/objects/osm/node/1").json()["version"] == 3

    _truncate(client)
    history = [*_nodes()[:5], Node(id=1, version=4, location=(2, 2), tags={})]
    report = _import(client, _write(tmp_path / "history.osm", history))
    assert client.get("/objects/osm/node/1").json()["version"] == 4
    assert report.created == 5


def test_a_malformed_file_is_refused_before_anything_is_written(
    osm: OSM, client: TestClient, tmp_path: Path
) -> None:
    good = _write(tmp_path / "good.osm.pbf", _nodes())
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(BadInput, match="Malformed"):
        _import(client, broken)
    assert client.get("/admin/stats", headers=osm.admin).json()["objects"].get("node", 0) == 0
