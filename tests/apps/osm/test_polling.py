"""Polling sources against a local HTTP server serving real-format replication files
(`state.txt`, `000/000/00N.osc.gz`) and Overpass JSON: diffs, sequence numbers, errors,
the schedule and the "poll now" endpoint."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.apps.osm.conftest import OSM, total_count
from tests.builders import assert_error, auth_headers, register_user, run_db
from worldbase.apps.osm import polling
from worldbase.apps.osm.models import DataSource
from worldbase.core.db import utcnow
from worldbase.core.errors import BadInput, UpstreamError
from worldbase.core.source_policy import SourceNotAllowed, SourcePolicy
from worldbase.settings import Settings

METADATA = "http://169.254.169.254/latest/meta-data/"


@pytest.fixture
def settings(make_settings: Callable[..., Settings], migrated_served: None) -> Settings:
    # The test upstream is on loopback: allow-listed, as an operator opens an internal mirror.
    return make_settings(worldbase_source_allowlist=["127.0.0.1/32"])


class Upstream:
    """A replication directory and an Overpass interpreter on 127.0.0.1."""

    def __init__(self, root: Path, base: str):
        self.root = root
        self.base = base
        self.replication_url = f"{base}/replication/"
        self.overpass_url = f"{base}/api/interpreter"
        self.status: dict[str, int] = {}  # path -> HTTP error to answer
        self.delay: dict[str, float] = {}  # path -> seconds to wait first
        self.queries: list[str] = []
        self.redirect: dict[str, str] = {}  # path -> Location of a 302

    def write(self, relative: str, data: bytes) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def state(self, seq: int) -> None:
        # The format osmosis writes (colons escaped), also as the per-sequence state file.
        text = f"#Sat Jan 06 10:00:00 UTC 2024\nsequenceNumber={seq}\n"
        text += f"timestamp=2024-01-06T10\\:{seq:02d}\\:00Z\n"
        self.write("replication/state.txt", text.encode())
        self.write(f"replication/000/000/{seq:03d}.state.txt", text.encode())

    def diff(self, seq: int, body: str) -> None:
        xml = f"<?xml version='1.0' encoding='UTF-8'?>\n<osmChange version='0.6'>{body}</osmChange>"
        self.write(f"replication/000/000/{seq:03d}.osc.gz", gzip.compress(xml.encode()))

    def overpass(self, payload: Any) -> None:
        self.write("api/interpreter", json.dumps(payload).encode())


def _handler(upstream: Upstream) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, directory=str(upstream.root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answered(self) -> bool:
            path = self.path.split("?")[0]
            if path in upstream.delay:
                time.sleep(upstream.delay[path])
            if path in upstream.redirect:
                self.send_response(302)
                self.send_header("Location", upstream.redirect[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True
            if path in upstream.status:
                self.send_error(upstream.status[path])
                return True
            return False

        def do_GET(self) -> None:
            if "?" in self.path:
                upstream.queries.append(self.path.split("?", 1)[1])
            if not self._answered():
                super().do_GET()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            upstream.queries.append(self.rfile.read(length).decode())
            if self._answered():
                return
            self.command = "GET"
            self.path = self.path.split("?")[0]
            super().do_GET()

    return Handler


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    root = tmp_path / "www"
    root.mkdir()
    holder: list[Upstream] = []

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that timed out closed its socket: expected here

    server = Server(("127.0.0.1", 0), lambda *a: _handler(holder[0])(*a))
    holder.append(Upstream(root, f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


DIFF_1 = """
<create>
  <node id="1" version="1" timestamp="2024-01-06T10:00:00Z" changeset="11" uid="3" user="ann"
        lat="52.5" lon="13.4"><tag k="amenity" v="cafe"/></node>
  <node id="2" version="1" lat="52.5" lon="13.5"/>
  <node id="3" version="1" lat="52.6" lon="13.5"><tag k="shop" v="bakery"/></node>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="path"/></way>
</create>"""
DIFF_2 = """
<modify><node id="1" version="2" lat="52.5" lon="13.4"><tag k="amenity" v="bar"/></node></modify>
<delete><node id="3" version="2" lat="52.6" lon="13.5"/></delete>"""
DIFF_3 = """
<create><node id="4" version="1" lat="52.7" lon="13.6"><tag k="amenity" v="cafe"/></node></create>
<modify><way id="10" version="2"><nd ref="1"/><nd ref="2"/><nd ref="4"/></way></modify>"""

OVERPASS = {
    "version": 0.6,
    "generator": "Overpass API",
    "elements": [
        {"type": "node", "id": 101, "lat": 52.52, "lon": 13.40, "version": 3,
         "tags": {"amenity": "cafe", "name": "Kaffee"}},
        {"type": "node", "id": 102, "lat": 52.53, "lon": 13.41, "version": 1,
         "tags": {"amenity": "cafe"}},
        {"type": "way", "id": 201, "version": 2, "nodes": [101, 102],
         "tags": {"highway": "footway"}},
        {"type": "node", "id": 103, "lat": 95, "lon": 13.41, "version": 1},
    ],
}  # fmt: skip


def _wait(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def _poll_job(osm: OSM, source_id: str) -> dict[str, Any]:
    response = osm.client.post(f"/data-sources/{source_id}/poll", headers=osm.admin)
    assert response.status_code == 202, response.text
    return _wait(osm.client, response.json()["id"], osm.admin)


def _poll(client: TestClient, source_id: str) -> dict[str, Any]:
    """One poll in this process (the job's body), on the app's loop and database."""
    db = client.app.state.services.db  # type: ignore[attr-defined]

    async def progress(fraction: float, message: str) -> None:
        pass

    policy = SourcePolicy.from_settings(client.app.state.settings)  # type: ignore[attr-defined]

    async def call() -> dict[str, Any]:
        return await polling.poll(db, source_id=source_id, progress=progress, policy=policy)

    return client.portal.call(call)  # type: ignore[union-attr]


def _set_source(client: TestClient, source_id: str, **values: Any) -> None:
    async def change(session: AsyncSession) -> None:
        await session.execute(update(DataSource).where(DataSource.id == source_id).values(**values))
        await session.commit()

    run_db(client, change)


def _replication(osm: OSM, upstream: Upstream, **info: Any) -> dict[str, Any]:
    connection = {"url": upstream.replication_url, "interval_seconds": 3600, **info}
    source, _ = osm.source(type="replication", connection_info=connection)
    return source


def _overpass(osm: OSM, upstream: Upstream, **info: Any) -> dict[str, Any]:
    connection = {"url": upstream.overpass_url, "query": "[out:json];node(1);out meta;"}
    source, _ = osm.source(type="overpass", connection_info={**connection, **info})
    return source


# --- replication ---------------------------------------------------------------------------------


def test_replication_applies_diffs_in_order_and_keeps_the_sequence(
    osm: OSM, client: TestClient, upstream: Upstream
) -> None:
    upstream.diff(1, DIFF_1)
    upstream.diff(2, DIFF_2)
    upstream.state(2)
    source = _replication(osm, upstream, start_sequence=0)
    job = _poll_job(osm, source["id"])
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert (result["diffs"], result["sequence_number"], result["behind"]) == (2, 2, 0)
    assert (result["created"], result["modified"], result["deleted"]) == (4, 1, 1)
    cafe = client.get("/objects/osm/node/1").json()
    assert (cafe["tags"], cafe["version"], cafe["source_id"]) == (
        {"amenity": "bar"},
        2,
        source["id"],
    )
    gone = client.get("/objects/osm/node/3").json()
    assert gone["deleted"] is True and gone["tags"] == {"shop": "bakery"}  # kept to look at
    history = client.get(f"/objects/{gone['id']}/history").json()["items"]
    assert [h["action"] for h in history] == ["delete", "create"]
    assert client.get("/objects/osm/way/10").json()["geom"]["coordinates"] == [
        [13.4, 52.5],
        [13.5, 52.5],
    ]
    read = client.get(f"/data-sources/{source['id']}", headers=osm.admin).json()
    assert read["sequence_number"] == 2 and read["last_polled_at"] is not None

    # A new diff: the way gets its third node from this diff, the others from the database.
    upstream.diff(3, DIFF_3)
    upstream.state(3)
    result = _poll(client, source["id"])
    assert (result["diffs"], result["sequence_number"], result["created"]) == (1, 3, 1)
    assert len(client.get("/objects/osm/way/10").json()["geom"]["coordinates"]) == 3
    # Nothing new: nothing happens.
    assert _poll(client, source["id"])["diffs"] == 0
    # Re-reading every diff (the sequence reset) changes nothing: versions are known.
    _set_source(client, source["id"], sequence_number=0)
    again = _poll(client, source["id"])
    assert (again["diffs"], again["unchanged"], again["created"], again["modified"]) == (3, 8, 0, 0)
    assert client.get("/admin/stats", headers=osm.admin).json()["history_entries"] == 8


def test_replication_without_a_start_follows_from_the_current_state(
    osm: OSM, client: TestClient, upstream: Upstream
) -> None:
    upstream.diff(7, DIFF_1)
    upstream.state(7)
    source = _replication(osm, upstream)
    assert _poll(client, source["id"]) == {"sequence_number": 7, "diffs": 0, "initialized": True}
    assert total_count(client.get("/objects")) == 0
    upstream.diff(8, DIFF_1)
    upstream.state(8)
    assert _poll(client, source["id"])["created"] == 4


REPLICATION_BREAKAGES = [
    ("no state", "replication/state.txt returned HTTP 404"),
    ("bad state", "replication/state.txt is malformed"),
    ("missing diff", "Diff 2 ({base}/replication/000/000/002.osc.gz) returned HTTP 404"),
    ("bad diff", "Diff 2 ({base}/replication/000/000/002.osc.gz) is malformed"),
    ("server behind", "The stored sequence 5 is ahead of the server's 2"),
]


def test_replication_upstream_errors_fail_with_the_reason_and_a_log_entry(
    osm: OSM, client: TestClient, upstream: Upstream
) -> None:
    for breakage, reason in REPLICATION_BREAKAGES:
        upstream.status.clear()
        upstream.diff(1, DIFF_1)
        upstream.diff(2, DIFF_2)
        upstream.state(2)
        if breakage == "no state":
            upstream.status["/replication/state.txt"] = 404
        elif breakage == "bad state":
            upstream.write("replication/state.txt", b"<html>maintenance</html>\n")
        elif breakage == "missing diff":
            upstream.status["/replication/000/000/002.osc.gz"] = 404
        elif breakage == "bad diff":
            upstream.write("replication/000/000/002.osc.gz", gzip.compress(b"<osmChange><crea"))
        start = 5 if breakage == "server behind" else 0
        source = _replication(osm, upstream, start_sequence=start)
        reason = reason.format(base=upstream.base)
        with pytest.raises(UpstreamError) as caught:
            _poll(client, source["id"])
        assert reason in caught.value.message, breakage
        log = client.get(
            f"/admin/validation-log?source_id={source['id']}", headers=osm.admin
        ).json()["items"]
        assert [(e["channel"], reason in e["reason"]) for e in log] == [("replication", True)]
        read = client.get(f"/data-sources/{source['id']}", headers=osm.admin).json()
        # Diff 1 is in and its sequence stored: the next poll resumes at diff 2.
        expected = 1 if "diff" in breakage else None
        assert read["sequence_number"] == expected, breakage
        # (Objects stay with the first source that stored their version.)
        stored = 0 if breakage in ("no state", "bad state") else 4
        assert total_count(client.get("/objects")) == stored, breakage


def test_a_failing_poll_fails_its_job_once(
    osm: OSM, client: TestClient, upstream: Upstream
) -> None:
    upstream.status["/replication/state.txt"] = 503
    source = _replication(osm, upstream, start_sequence=0)
    job = _poll_job(osm, source["id"])
    assert job["status"] == "failed" and job["attempts"] == 1
    assert "state.txt returned HTTP 503" in job["error"]


# --- overpass ------------------------------------------------------------------------------------


def test_overpass_query_result_is_ingested_idempotently(
    osm: OSM, client: TestClient, upstream: Upstream
) -> None:
    upstream.overpass(OVERPASS)
    source = _overpass(osm, upstream)
    job = _poll_job(osm, source["id"])
    assert job["status"] == "succeeded", job
    assert (job["result"]["created"], job["result"]["rejected"]) == (3, 1)
    assert upstream.queries == ["data=%5Bout%3Ajson%5D%3Bnode%281%29%3Bout+meta%3B"]
    cafes = client.get("/objects?tag=amenity=cafe&bbox=13,52,14,53")
    assert total_count(cafes) == 2 and len(cafes.json()) == 2
    assert client.get("/objects/osm/way/201").json()["geom"]["type"] == "LineString"
    log = client.get("/admin/validation-log", headers=osm.admin).json()["items"]
    assert log[0]["channel"] == "overpass" and "latitude 95" in log[0]["reason"]
    # The same answer again (here by GET): nothing changes.
    _set_source(
        client,
        source["id"],
        connection_info={"url": upstream.overpass_url, "query": "[out:json];", "method": "GET"},
    )
    again = _poll(client, source["id"])
    assert (again["unchanged"], again["created"], again["modified"]) == (3, 0, 0)
    assert upstream.queries[-1] == "data=%5Bout%3Ajson%5D%3B"


OVERPASS_BREAKAGES = [
    ("http 429", "returned HTTP 429"),
    ("not json", "sent malformed JSON"),
    ("no elements", "sent no OSM JSON"),
    ("runtime error", "reported: runtime error: Query timed out"),
    ("slow", "timed out after 1 s"),
]


def test_overpass_upstream_errors(osm: OSM, client: TestClient, upstream: Upstream) -> None:
    for breakage, reason in OVERPASS_BREAKAGES:
        upstream.status.clear()
        upstream.overpass(OVERPASS)
        if breakage == "http 429":
            upstream.status["/api/interpreter"] = 429
        elif breakage == "not json":
            upstream.write("api/interpreter", b"<osm></osm>")
        elif breakage == "no elements":
            upstream.overpass({"version": 0.6})
        elif breakage == "runtime error":
            upstream.overpass({**OVERPASS, "remark": "runtime error: Query timed out after 25 s"})
        else:
            upstream.delay["/api/interpreter"] = 1.5
        source = _overpass(osm, upstream, timeout_seconds=1)
        with pytest.raises(UpstreamError, match=reason):
            _poll(client, source["id"])
        log = client.get(
            f"/admin/validation-log?source_id={source['id']}", headers=osm.admin
        ).json()["items"]
        assert [(e["channel"], reason in e["reason"]) for e in log] == [("overpass", True)]
    assert total_count(client.get("/objects")) == 0


# --- the schedule and the endpoint ---------------------------------------------------------------


def test_schedule_enqueues_due_active_polling_sources_once(
    osm: OSM, client: TestClient, upstream: Upstream
) -> None:
    upstream.overpass(OVERPASS)
    due = _overpass(osm, upstream, interval_seconds=600)
    fresh = _overpass(osm, upstream, interval_seconds=600)
    inactive = _overpass(osm, upstream, interval_seconds=600)
    pushed, _ = osm.source(type="rest")
    an_hour_ago = utcnow() - timedelta(hours=1)
    for source in (due, inactive, pushed):
        _set_source(client, source["id"], created_at=an_hour_ago)
    _set_source(client, inactive["id"], is_active=False)
    jobs = client.app.state.services.jobs  # type: ignore[attr-defined]
    # What Huey runs every minute, run now: only the due source gets a poll.
    jobs.run_periodic("osm.schedule_polls")
    listed = client.get("/api/jobs?all=true&kind=osm.poll_source", headers=osm.admin).json()
    assert [j["params"]["source_id"] for j in listed["items"]] == [due["id"]]
    job = _wait(client, listed["items"][0]["id"], osm.admin)
    assert job["status"] == "succeeded" and job["result"]["created"] == 3
    # Just polled: not due again; an interval later both active sources are.
    jobs.run_periodic("osm.schedule_polls")
    assert client.get("/api/jobs?all=true", headers=osm.admin).json()["total"] == 1
    services = client.app.state.services  # type: ignore[attr-defined]
    later = utcnow() + timedelta(seconds=601)
    enqueued = client.portal.call(  # type: ignore[union-attr]
        lambda: polling.schedule_due(services.db, enqueue=jobs.enqueue, now=later)
    )
    assert sorted(enqueued) == sorted([due["id"], fresh["id"]])
    for item in client.get("/api/jobs?all=true", headers=osm.admin).json()["items"]:
        assert _wait(client, item["id"], osm.admin)["status"] == "succeeded"


def test_poll_endpoint_permissions_and_refusals(
    osm: OSM, client: TestClient, upstream: Upstream
) -> None:
    upstream.overpass(OVERPASS)
    source = _overpass(osm, upstream)
    url = f"/data-sources/{source['id']}/poll"
    assert_error(client.post(url), 401)
    _, user_token = register_user(client)
    assert_error(client.post(url, headers=auth_headers(user_token)), 403)
    assert_error(client.post("/data-sources/nope/poll", headers=osm.admin), 404)
    pushed, _ = osm.source(type="rest")
    assert_error(client.post(f"/data-sources/{pushed['id']}/poll", headers=osm.admin), 422)
    # A poll still running blocks the next one.
    upstream.delay["/api/interpreter"] = 1.0
    first = client.post(url, headers=osm.admin)
    assert first.status_code == 202
    body = assert_error(client.post(url, headers=osm.admin), 409)
    assert body["detail"]["job"] == first.json()["id"]
    assert _wait(client, first.json()["id"], osm.admin)["status"] == "succeeded"
    client.post(f"/data-sources/{source['id']}/deactivate", headers=osm.admin)
    assert_error(client.post(url, headers=osm.admin), 409)
    assert client.get("/api/jobs?all=true", headers=osm.admin).json()["total"] == 1


BAD_CONNECTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("replication", {}, "connection_info.url"),
    ("replication", {"url": "ftp://x/"}, "connection_info.url"),
    ("replication", {"url": "http://x/", "start_sequence": -1}, "connection_info.start_sequence"),
    ("overpass", {"url": "http://x/"}, "connection_info.query"),
    ("overpass", {"url": "http://x/", "query": "q", "interval_seconds": 0},
     "connection_info.interval_seconds"),
    ("overpass", {"url": "http://x/", "query": "q", "method": "PUT"}, "connection_info.method"),
]  # fmt: skip


def test_polling_sources_need_a_usable_connection(osm: OSM, client: TestClient) -> None:
    for source_type, info, field in BAD_CONNECTIONS:
        body = {"name": "bad", "type": source_type, "connection_info": info}
        error = assert_error(client.post("/data-sources", json=body, headers=osm.admin), 422)
        assert error["detail"]["field"] == field
        with pytest.raises(BadInput):
            polling.poll_config(source_type, info)
    assert client.get("/data-sources", headers=osm.admin).json()["total"] == 0


def test_updating_a_polling_source_checks_its_connection(
    osm: OSM, client: TestClient, upstream: Upstream
) -> None:
    source = _overpass(osm, upstream)
    url = f"/data-sources/{source['id']}"
    bad = {"connection_info": {"url": upstream.overpass_url}}
    assert_error(client.patch(url, json=bad, headers=osm.admin), 422)
    kept = client.get(url, headers=osm.admin).json()["connection_info"]
    assert kept["query"] == "[out:json];node(1);out meta;"
    good = {"connection_info": {"url": upstream.overpass_url, "query": "[out:json];"}}
    assert client.patch(url, json=good, headers=osm.admin).status_code == 200


# --- source policy (issue 18 items 2 and 3) ------------------------------------------------------


def test_metadata_address_is_refused_at_create_update_and_poll(
    osm: OSM, client: TestClient, upstream: Upstream
) -> None:
    for kind, info in (
        ("replication", {"url": METADATA}),
        ("overpass", {"url": METADATA + "interpreter", "query": "[out:json];node(1);out;"}),
        ("replication", {"url": "http://[::ffff:169.254.169.254]/x/"}),
        ("replication", {"url": "http://10.0.0.7/replication/"}),
    ):
        body = {"name": "metadata", "type": kind, "connection_info": info}
        assert_error(client.post("/data-sources", json=body, headers=osm.admin), 403)
    source = _replication(osm, upstream)
    patch = {"connection_info": {"url": METADATA}}
    response = client.patch(f"/data-sources/{source['id']}", json=patch, headers=osm.admin)
    assert_error(response, 403)
    # Stored before the policy existed (or written behind the API's back): refused at poll.
    _set_source(client, source["id"], connection_info={"url": METADATA})
    with pytest.raises(SourceNotAllowed):
        _poll(client, source["id"])


def test_redirects_to_refused_addresses_are_not_followed(
    osm: OSM, client: TestClient, upstream: Upstream
) -> None:
    upstream.redirect["/api/interpreter"] = METADATA
    source = _overpass(osm, upstream)
    with pytest.raises(SourceNotAllowed):
        _poll(client, source["id"])
    upstream.redirect["/replication/state.txt"] = METADATA + "state.txt"
    replication = _replication(osm, upstream)
    with pytest.raises(SourceNotAllowed):
        _poll(client, replication["id"])
    # A diff that redirects: pyosmium's requests session goes through the policy too.
    upstream.redirect.clear()
    upstream.state(1)
    upstream.diff(1, DIFF_1)
    upstream.redirect["/replication/000/000/001.osc.gz"] = "http://10.0.0.7/001.osc.gz"
    _set_source(
        client,
        replication["id"],
        connection_info={"url": upstream.replication_url, "start_sequence": 0},
    )
    with pytest.raises(SourceNotAllowed):
        _poll(client, replication["id"])


def test_default_policy_refuses_loopback(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    upstream: Upstream,
) -> None:
    plain = OSM(app_factory(make_settings()))
    body = {
        "name": "x",
        "type": "replication",
        "connection_info": {"url": upstream.replication_url},
    }
    assert_error(plain.client.post("/data-sources", json=body, headers=plain.admin), 403)
    public = {"url": "https://planet.openstreetmap.org/replication/minute/"}
    created = plain.client.post(
        "/data-sources",
        json={"name": "osm", "type": "replication", "connection_info": public},
        headers=plain.admin,
    )
    assert created.status_code == 201, created.text
