"""The bulk path of file imports (new nodes by COPY / executemany): same answers as the
per-element path: spatial index and tags queryable, history rows, idempotent by version,
filters respected, and a conflict falls back to the per-element path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import osmium
from fastapi.testclient import TestClient
from osmium.osm.mutable import Node
from sqlalchemy import text

from tests.apps.osm.conftest import OSM, node, total_count
from tests.builders import run_db
from worldbase.apps.osm.files import _node_row, _store_batch, import_file
from worldbase.apps.osm.ingest import IngestReport


def _pbf(path: Path, nodes: list[tuple[int, int, dict[str, str]]]) -> Path:
    with osmium.SimpleWriter(str(path)) as writer:
        for osm_id, version, tags in nodes:
            writer.add_node(
                Node(
                    id=osm_id,
                    version=version,
                    changeset=100 + version,
                    uid=5,
                    user="bulk",
                    timestamp="2024-02-03T04:05:06Z",
                    location=(10 + osm_id / 1000, 50 + osm_id / 1000),
                    tags=tags,
                )
            )
    return path


def _import(client: TestClient, path: Path, source_id: str | None = None) -> IngestReport:
    db = client.app.state.services.db  # type: ignore[attr-defined]
    return client.portal.call(lambda: import_file(db, path, source_id=source_id))  # type: ignore[union-attr,no-any-return]


def _tags(i: int) -> dict[str, str]:
    return {"amenity": "cafe", "name": f"Café {i}"} if i % 10 == 0 else {}


def test_bulk_import_is_queryable_and_idempotent(
    osm: OSM, client: TestClient, tmp_path: Path
) -> None:
    path = _pbf(tmp_path / "a.osm.pbf", [(i, 1, _tags(i)) for i in range(1, 301)])
    report = _import(client, path)
    assert (report.received, report.created, report.rejected) == (300, 300, 0)
    # The bbox (GiST / R*Tree) and the tag (JSONB / JSON) filters see the bulk rows.
    found = client.get("/objects?bbox=10.0995,50.0995,10.2005,50.2005&tag=amenity=cafe").json()
    assert sorted(int(o["osm_id"]) for o in found) == list(range(100, 201, 10))
    cafe = client.get("/objects/osm/node/100").json()
    assert cafe["tags"] == {"amenity": "cafe", "name": "Café 100"}
    assert cafe["geom"] == {"type": "Point", "coordinates": [10.1, 50.1]}
    assert (cafe["version"], cafe["changeset"], cafe["user"], cafe["uid"]) == (1, 101, "bulk", 5)
    assert cafe["timestamp"] == "2024-02-03T04:05:06Z"
    # No history row is written for a bulk node: its create entry is shown from its row.
    assert client.get("/admin/stats", headers=osm.admin).json()["history_entries"] == 0
    shown = client.get(f"/objects/{cafe['id']}/history").json()
    assert shown["total"] == 1
    assert [(h["id"], h["action"], h["version"], h["geom"]["coordinates"], h["changeset"])
            for h in shown["items"]] == [(cafe["id"], "create", 1, [10.1, 50.1], 101)]  # fmt: skip
    assert client.get(f"/objects/{cafe['id']}/history?offset=1").json() == {
        "items": [], "total": 1, "limit": 100, "offset": 1,
    }  # fmt: skip
    # Again: nothing changes (and no row is written). A newer version modifies, a new node
    # is created.
    assert _import(client, path).unchanged == 300
    assert client.get("/admin/stats", headers=osm.admin).json()["history_entries"] == 0
    newer = _pbf(tmp_path / "b.osm.pbf", [(100, 2, {"amenity": "bar"}), (1000, 1, {})])
    report = _import(client, newer)
    assert (report.modified, report.created, report.unchanged) == (1, 1, 0)
    assert client.get("/objects/osm/node/100").json()["tags"] == {"amenity": "bar"}
    # The first change wrote the create entry (as it was shown) before its own row.
    history = client.get(f"/objects/{cafe['id']}/history").json()
    assert history["total"] == 2
    assert history["items"][1] == shown["items"][0]
    assert [(h["action"], h["version"], h["tags"]) for h in history["items"]] == [
        ("modify", 2, {"amenity": "bar"}),
        ("create", 1, {"amenity": "cafe", "name": "Café 100"}),
    ]
    assert client.get("/admin/stats", headers=osm.admin).json()["history_entries"] == 2
    assert client.get("/admin/stats", headers=osm.admin).json()["objects"]["node"] == 301


def test_a_source_filter_takes_the_per_element_path(
    osm: OSM, client: TestClient, tmp_path: Path
) -> None:
    source, _ = osm.source(type="file", tag_filter=["amenity=cafe"])
    path = _pbf(tmp_path / "a.osm.pbf", [(i, 1, _tags(i)) for i in range(1, 51)])
    report = _import(client, path, source["id"])
    assert (report.created, report.filtered) == (5, 45)
    assert total_count(client.get(f"/objects?source_id={source['id']}")) == 5


def test_a_conflicting_writer_falls_back_to_the_per_element_path(
    osm: OSM, client: TestClient, tmp_path: Path
) -> None:
    # Node 2 arrives by REST after the import decided that no node was stored.
    source, token = osm.source()
    osm.push(source["id"], token, {"elements": [node(2, 10.002, 50.002, version=1)]})
    path = _pbf(tmp_path / "a.osm.pbf", [(1, 1, {}), (2, 3, {"shop": "x"}), (3, 1, {})])
    rows = [
        (i, row) for i, obj in enumerate(osmium.FileProcessor(str(path))) if (row := _node_row(obj))
    ]
    db = client.app.state.services.db  # type: ignore[attr-defined]
    report: Any = client.portal.call(  # type: ignore[union-attr]
        lambda: _store_batch(
            db.sessionmaker,
            ([], [], rows),
            source_id=None,
            channel="file",
            lookup=False,
            max_vertices=100,
        )
    )
    assert (report.created, report.modified, report.unchanged) == (2, 1, 0)
    assert client.get("/objects/osm/node/2").json()["tags"] == {"shop": "x"}
    # Nothing half-written: one row per node, and (SQLite) the R*Tree trigger is back.
    assert total_count(client.get("/objects?bbox=9,49,11,51")) == 3

    async def triggers(session: Any) -> int:
        if session.get_bind().dialect.name != "sqlite":
            return 1
        query = "SELECT count(*) FROM sqlite_master WHERE name = 'rtree_osm_objects_geom_insert'"
        return int(await session.scalar(text(query)))

    assert run_db(client, triggers) == 1
    osm.push(source["id"], token, {"elements": [node(4, 10.004, 50.004)]})
    assert total_count(client.get("/objects?bbox=10.0035,50.0035,10.0045,50.0045")) == 1
