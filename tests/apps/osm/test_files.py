""".osm / .osc / .osm.pbf imports through pyosmium: geometry, diffs, bad files, the job."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import osmium
import pytest
from fastapi.testclient import TestClient

from tests.apps.osm.conftest import OSM, total_count
from tests.builders import assert_error, auth_headers, register_user
from tests.conftest import truncate_all
from worldbase.apps.osm.files import import_file
from worldbase.core.errors import BadInput
from worldbase.settings import Settings

OSM_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <node id="1" version="1" timestamp="2024-01-01T00:00:00Z" changeset="5" uid="7" user="ann"
        lat="0" lon="0"><tag k="amenity" v="cafe"/></node>
  <node id="2" version="1" lat="0" lon="1"/>
  <node id="3" version="1" lat="1" lon="1"/>
  <node id="4" version="1" lat="1" lon="0"/>
  <node id="5" version="1" lat="0.2" lon="0.2"/>
  <node id="6" version="1" lat="0.2" lon="0.4"/>
  <node id="7" version="1" lat="0.4" lon="0.4"/>
  <node id="8" version="1" lat="0.4" lon="0.2"/>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/></way>
  <way id="11" version="1"><nd ref="5"/><nd ref="6"/><nd ref="7"/><nd ref="8"/><nd ref="5"/></way>
  <way id="12" version="2"><nd ref="1"/><nd ref="3"/><tag k="highway" v="path"/></way>
  <relation id="20" version="1">
    <member type="way" ref="10" role="outer"/><member type="way" ref="11" role="inner"/>
    <tag k="type" v="multipolygon"/><tag k="landuse" v="forest"/>
  </relation>
</osm>
"""

OSC_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osmChange version="0.6" generator="test">
  <create><node id="30" version="1" lat="5" lon="5"><tag k="shop" v="bakery"/></node></create>
  <modify><node id="1" version="2" lat="0" lon="0"><tag k="amenity" v="bar"/></node></modify>
  <delete><node id="2" version="2" lat="0" lon="1"/></delete>
  <create><way id="40" version="1"><nd ref="30"/><nd ref="999"/></way></create>
  <create><way id="41" version="1"><nd ref="30"/><nd ref="3"/></way></create>
</osmChange>
"""


def _run(client: TestClient, path: Path, source_id: str | None = None) -> Any:
    services = client.app.state.services  # type: ignore[attr-defined]
    return client.portal.call(lambda: import_file(services.db, path, source_id=source_id))  # type: ignore[union-attr]


def test_osm_file_with_way_and_multipolygon_geometry(client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "area.osm"
    path.write_text(OSM_XML)
    report = _run(client, path)
    assert (report.created, report.rejected) == (12, 0)
    cafe = client.get("/objects/osm/node/1").json()
    assert cafe["tags"] == {"amenity": "cafe"} and cafe["user"] == "ann" and cafe["changeset"] == 5
    assert client.get("/objects/osm/way/10").json()["geom"]["type"] == "LineString"  # untagged
    assert client.get("/objects/osm/way/12").json()["geom"]["coordinates"] == [[0, 0], [1, 1]]
    forest = client.get("/objects/osm/relation/20").json()
    assert forest["geom"]["type"] == "MultiPolygon"
    assert len(forest["geom"]["coordinates"][0]) == 2  # outer ring and the hole
    assert {m["ref"] for m in forest["refs"]} == {10, 11}
    # Importing it again changes nothing (same versions).
    assert _run(client, path).unchanged == 12


def test_osc_diff_creates_modifies_deletes_and_rejects_unknown_nodes(
    osm: OSM, client: TestClient, tmp_path: Path
) -> None:
    (tmp_path / "base.osm").write_text(OSM_XML)
    _run(client, tmp_path / "base.osm")
    (tmp_path / "diff.osc").write_text(OSC_XML)
    report = _run(client, tmp_path / "diff.osc")
    assert (report.created, report.modified, report.deleted, report.rejected) == (2, 1, 1, 1)
    assert client.get("/objects/osm/node/1").json()["tags"] == {"amenity": "bar"}
    gone = client.get("/objects/osm/node/2").json()
    assert gone["deleted"] is True
    history = client.get(f"/objects/{gone['id']}/history").json()["items"]
    assert [h["action"] for h in history] == ["delete", "create"]
    # Way 41 refers to node 3, known from the database only.
    assert client.get("/objects/osm/way/41").json()["geom"]["coordinates"] == [[5, 5], [1, 1]]
    assert_error(client.get("/objects/osm/way/40"), 404)
    log = client.get("/admin/validation-log", headers=osm.admin).json()["items"]
    assert "unknown nodes [999]" in log[0]["reason"] and log[0]["channel"] == "file"


def test_pbf_written_by_osmium(client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "small.osm.pbf"
    with osmium.SimpleWriter(str(path)) as writer:
        for i in range(1, 101):
            writer.add_node(
                osmium.osm.mutable.Node(
                    id=i, version=1, location=(i / 100, 0.5), tags={"n": str(i)}
                )
            )
        writer.add_way(
            osmium.osm.mutable.Way(id=1, version=1, nodes=[1, 2, 3], tags={"highway": "x"})
        )
    report = _run(client, path)
    assert report.created == 101
    assert total_count(client.get("/objects?type=node")) == 100
    assert client.get("/objects/osm/way/1").json()["geom"]["coordinates"][2] == [0.03, 0.5]


@pytest.mark.parametrize(
    ("name", "content"),
    [("broken.osm", "<osm><node id='1' lat='x'"), ("broken.osm.pbf", "not a pbf at all")],
)
def test_malformed_files_write_nothing(
    client: TestClient, tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(BadInput, match="Malformed OSM file"):
        _run(client, path)
    assert total_count(client.get("/objects")) == 0


def test_upload_runs_an_import_job(osm: OSM, client: TestClient) -> None:
    source, _ = osm.source(type="file")
    url = f"/data-sources/{source['id']}/import"
    files = {"file": ("area.osm", OSM_XML.encode(), "application/xml")}
    assert_error(client.post(url, files=files), 401)
    _, user_token = register_user(client)
    assert_error(client.post(url, files=files, headers=auth_headers(user_token)), 403)
    bad = {"file": ("notes.txt", b"hello", "text/plain")}
    assert_error(client.post(url, files=bad, headers=osm.admin), 422)
    job = _finished_job(client, osm, client.post(url, files=files, headers=osm.admin))
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 12 and job["progress"] == 1.0
    assert total_count(client.get(f"/objects?source_id={source['id']}")) == 12
    # An explicit first load into a non-empty table fails the job (PostgreSQL; SQLite has
    # no create mode of its own and takes the usual path).
    create = client.post(url, files=files, data={"create": "true"}, headers=osm.admin)
    job = _finished_job(client, osm, create)
    if client.app.state.services.db.is_sqlite:  # type: ignore[attr-defined]
        assert job["status"] == "succeeded" and job["result"]["unchanged"] == 12, job
    else:
        assert job["status"] == "failed" and "empty" in str(job), job
    assert total_count(client.get(f"/objects?source_id={source['id']}")) == 12


def test_file_ways_and_relations_over_the_vertex_cap_are_rejected(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    """Issue 18 item 7: WORLDBASE_MAX_FEATURE_VERTICES holds for file imports: a way with
    more nodes, or a multipolygon with a longer outline, goes to the validation log."""
    client = app_factory(make_settings(worldbase_max_feature_vertices=5))
    client.portal.call(truncate_all, client.app.state.services)  # type: ignore[union-attr, attr-defined]
    path = tmp_path / "area.osm"
    # OSM_XML: ways 10 and 11 are rings of 5 positions (at the cap); way 12 has 2.
    longer = (
        '<way id="13" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/>'
        '<nd ref="5"/><nd ref="6"/></way>'
    )
    path.write_text(OSM_XML.replace("<relation", longer + "\n  <relation"))
    report = _run(client, path)
    # The relation's multipolygon has 10 positions (outer ring and hole): over the cap too.
    assert (report.created, report.rejected) == (11, 2), report
    reasons = sorted(e["reason"] for e in report.errors)
    assert reasons[0].startswith("relation 20 has more than 5 positions"), reasons
    assert reasons[1].startswith("way 13 has more than 5 positions"), reasons
    assert all("WORLDBASE_MAX_FEATURE_VERTICES" in r for r in reasons)
    assert client.get("/objects/osm/way/13").status_code == 404
    assert client.get("/objects/osm/way/10").status_code == 200


def test_file_imports_count_against_the_heavy_job_limit(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """Issue 18 item 8: an import is a heavy job; two queued, the third is 429 with
    Retry-After and stores nothing; another admin keeps their own allowance."""
    # No consumer and a queue of its own: accepted imports stay queued, as behind a busy worker.
    client = app_factory(
        make_settings(
            worldbase_inline_worker=False,
            worldbase_namespace=f"heavy-{uuid.uuid4().hex[:8]}",
            worldbase_max_heavy_jobs_per_user=2,
        )
    )
    osm, other = OSM(client), OSM(client)
    source, _ = osm.source(type="file")
    url = f"/data-sources/{source['id']}/import"
    storage = client.app.state.services.storage  # type: ignore[attr-defined]

    def stored() -> set[str]:
        async def keys() -> set[str]:
            return {obj.key async for obj in storage.list("osm/imports/")}

        return set(client.portal.call(keys))  # type: ignore[union-attr]

    def upload(headers: dict[str, str]) -> Any:
        files = {"file": ("area.osm", OSM_XML.encode(), "application/xml")}
        return client.post(url, files=files, headers=headers)

    before = stored()
    first, second = upload(osm.admin), upload(osm.admin)
    assert (first.status_code, second.status_code) == (202, 202), first.text
    refused = upload(osm.admin)
    body = assert_error(refused, 429)
    assert "WORLDBASE_MAX_HEAVY_JOBS_PER_USER" in body["message"]
    assert int(refused.headers["Retry-After"]) > 0
    assert len(stored() - before) == 2  # the refused file was not stored
    third = upload(other.admin)
    assert third.status_code == 202, third.text
    # A finished (here: cancelled) job frees its place.
    cancel = client.post(f"/api/jobs/{first.json()['id']}/cancel", headers=osm.admin)
    assert cancel.status_code == 200, cancel.text
    assert upload(osm.admin).status_code == 202


def _finished_job(client: TestClient, osm: OSM, response: Any) -> Any:
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=osm.admin).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")
