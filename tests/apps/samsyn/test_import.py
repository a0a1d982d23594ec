"""Importing vector files into new layers: inline when small, a job when large, all or nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.apps.samsyn.conftest import SQUARE, Team, feature, point
from tests.builders import assert_error, auth_headers, register_user, run_db
from worldbase.apps.samsyn.imports import service as service_import
from worldbase.apps.samsyn.models import LayerFeature
from worldbase.settings import Settings


def _layers(team: Team) -> int:
    return int(team.client.get("/api/layers", headers=team.as_("owner")).json()["total"])


def _stored_features(team: Team) -> int:
    async def count(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(LayerFeature)) or 0)

    return int(run_db(team.client, count))


def _import(team: Team, name: str, data: bytes, filename: str = "f.geojson") -> Any:
    return team.client.post(
        "/api/layers/import",
        data={"name": name},
        files={"file": (filename, data, "application/octet-stream")},
        headers=team.as_("owner"),
    )


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Chunks of 3 features; the sizes of the chunks written, in order."""
    monkeypatch.setattr(service_import, "CHUNK_FEATURES", 3)
    sizes: list[int] = []
    insert = service_import.insert_prepared

    async def counted(session: AsyncSession, prepared: Any) -> int:
        sizes.append(len(prepared.records))
        return await insert(session, prepared)

    monkeypatch.setattr(service_import, "insert_prepared", counted)
    return sizes


def _no_reader_thread() -> bool:
    return not any(t.name.startswith("read-ahead") for t in threading.enumerate())


def test_small_geojson_is_imported_inline(team: Team) -> None:
    data = json.dumps(
        {"type": "FeatureCollection", "features": [point(1, 2, n=1), point(3, 4, n=2)]}
    )
    response = team.client.post(
        "/api/layers/import",
        data={"name": "Buoys", "category": "sensors"},
        files={"file": ("whatever.bin", data.encode(), "application/octet-stream")},
        headers=team.as_("owner"),
    )
    assert response.status_code == 201, response.text
    layer = response.json()
    assert layer["source_type"] == "vector" and layer["source_config"]["featureCount"] == 2
    features = team.client.get(
        f"/api/layers/{layer['id']}/features", headers=team.as_("owner")
    ).json()
    assert [f["properties"]["n"] for f in features["features"]] == [1, 2]


def test_a_bad_row_imports_nothing(team: Team) -> None:
    csv = b"name,wkt\na,POINT (1 2)\nb,POINT (1 200)\n"
    response = team.client.post(
        "/api/layers/import",
        data={"name": "Bad"},
        files={"file": ("rows.csv", csv, "text/csv")},
        headers=team.as_("owner"),
    )
    body = assert_error(response, 422)
    assert "3" in body["message"] or "2" in body["message"], body
    assert _layers(team) == 0
    empty = team.client.post(
        "/api/layers/import",
        data={"name": "Empty"},
        files={"file": ("e.csv", b"", "text/csv")},
        headers=team.as_("owner"),
    )
    assert_error(empty, 422)
    anonymous = team.client.post(
        "/api/layers/import", data={"name": "x"}, files={"file": ("e.csv", csv, "text/csv")}
    )
    assert_error(anonymous, 401)
    assert _layers(team) == 0


def test_a_large_file_is_imported_by_a_job(team: Team) -> None:
    features = [
        point(i % 360 - 180 + 0.5, (i % 170) - 85 + 0.25, n=i, pad="x" * 400) for i in range(5_000)
    ]
    data = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    assert len(data) > 2 * 1024 * 1024
    response = team.client.post(
        "/api/layers/import",
        data={"name": "Many"},
        files={"file": ("many.geojson", data, "application/geo+json")},
        headers=team.as_("owner"),
    )
    assert response.status_code == 202, response.text
    job_url = response.json()["status_url"]
    deadline = time.monotonic() + 60
    while True:
        job = team.client.get(job_url, headers=team.as_("owner")).json()
        if job["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    layer_id = job["result"]["layer_id"]
    layer = team.client.get(f"/api/layers/{layer_id}", headers=team.as_("owner")).json()
    assert layer["source_config"]["featureCount"] == 5_000
    assert team.client.get(f"/api/layers/{layer_id}/features?limit=1").status_code == 404


def _collection(features: list[dict[str, Any]]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


# The GeoJSON reader validates 10,000 features at a time before it yields any of them: its
# bad feature comes after that many, in chunks of 4,000 (two written, the third fails).
LATE_GEOJSON = [point(i % 360 - 180 + 0.5, i % 90, n=i) for i in range(10_002)]
LATE_CSV = b"n,lon,lat\n" + b"".join(b"%d,%d,1\n" % (i, i) for i in range(7)) + b"7,x,1\n"


@pytest.mark.parametrize(
    ("filename", "data", "chunk", "where"),
    [
        ("late.geojson", _collection([*LATE_GEOJSON, point(1, 200)]), 4_000, "features[10002]"),
        ("late.csv", LATE_CSV, 3, "line 9"),
    ],
)
def test_a_bad_feature_after_written_chunks_imports_nothing(
    team: Team,
    writes: list[int],
    monkeypatch: pytest.MonkeyPatch,
    filename: str,
    data: bytes,
    chunk: int,
    where: str,
) -> None:
    monkeypatch.setattr(service_import, "CHUNK_FEATURES", chunk)
    monkeypatch.setattr(service_import, "FIRST_CHUNK_FEATURES", chunk)
    body = assert_error(_import(team, "Late", data, filename), 422)
    assert where in body["message"], body
    assert writes == [chunk, chunk]  # written before the bad feature was read
    assert _layers(team) == 0 and _stored_features(team) == 0
    assert _no_reader_thread()


def test_a_chunked_import_keeps_order_and_stats(
    team: Team, writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    features = [point(-10 + i, 40 - i, n=i) for i in range(5)] + [
        feature(SQUARE, n=5),
        point(20, 60, n=6),
    ]
    chunked = _import(team, "Chunked", _collection(features))
    assert chunked.status_code == 201, chunked.text
    assert writes == [3, 3, 1]
    config = chunked.json()["source_config"]
    assert config["featureCount"] == 7
    assert config["bounds"] == [[-10.0, 36.0], [20.0, 60.0]]
    assert config["geometryTypes"] == ["Point", "Polygon"] and config["geometryType"] == "Mixed"
    layer_id = chunked.json()["id"]
    listed = team.client.get(
        f"/api/layers/{layer_id}/features?limit=100", headers=team.as_("owner")
    ).json()["features"]
    assert [f["display_order"] for f in listed] == list(range(7))
    assert [f["properties"]["n"] for f in listed] == list(range(7))
    # The same file in one chunk: the same stats (accumulated per chunk above).
    monkeypatch.setattr(service_import, "CHUNK_FEATURES", 100)
    whole = _import(team, "Whole", _collection(features))
    assert whole.status_code == 201, whole.text
    assert whole.json()["source_config"] == config
    # A smaller first chunk (the writes start sooner): the same again.
    monkeypatch.setattr(service_import, "CHUNK_FEATURES", 3)
    monkeypatch.setattr(service_import, "FIRST_CHUNK_FEATURES", 2)
    writes.clear()
    ramped = _import(team, "Ramped", _collection(features))
    assert ramped.status_code == 201, ramped.text
    assert writes == [2, 3, 2] and ramped.json()["source_config"] == config


def test_a_failed_write_stops_the_reader(
    team: Team, writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = service_import.insert_prepared

    async def failing(session: AsyncSession, prepared: Any) -> int:
        if writes:
            raise RuntimeError("the database went away")
        return await counted(session, prepared)

    monkeypatch.setattr(service_import, "insert_prepared", failing)
    response = _import(team, "Broken", _collection([point(i, i, n=i) for i in range(30)]))
    assert response.status_code == 500, response.text
    assert writes == [3]
    assert _layers(team) == 0 and _stored_features(team) == 0
    assert _no_reader_thread()


def _line(n: int, **properties: Any) -> dict[str, Any]:
    coordinates = [[i / n, (i % 2) / n] for i in range(n)]
    return feature({"type": "LineString", "coordinates": coordinates}, **properties)


def test_a_feature_over_the_vertex_cap_fails_the_import(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """Issue 18 item 7: WORLDBASE_MAX_FEATURE_VERTICES holds for imports as for feature
    writes, inline and in the job; the feature is named and nothing is created."""
    client = app_factory(make_settings(worldbase_max_feature_vertices=50))
    _, token = register_user(client)
    headers = auth_headers(token)

    def post(data: bytes, filename: str) -> Any:
        files = {"file": (filename, data, "application/octet-stream")}
        return client.post("/api/layers/import", data={"name": "L"}, files=files, headers=headers)

    def layers() -> int:
        return int(client.get("/api/layers", headers=headers).json()["total"])

    at_cap = post(_collection([_line(50), point(1, 2)]), "ok.geojson")
    assert at_cap.status_code == 201, at_cap.text
    over = assert_error(post(_collection([_line(50), _line(51)]), "over.geojson"), 422)
    assert "features[1]" in over["message"], over
    assert "WORLDBASE_MAX_FEATURE_VERTICES" in over["message"], over
    assert over["detail"]["limit"] == 50
    wkt = "LINESTRING (" + ", ".join(f"{i / 51} {i % 2}" for i in range(51)) + ")"
    csv = f'n,wkt\n1,POINT (1 2)\n2,"{wkt}"\n'.encode()
    over_csv = assert_error(post(csv, "over.csv"), 422)
    assert "line 3" in over_csv["message"], over_csv
    assert "WORLDBASE_MAX_FEATURE_VERTICES" in over_csv["message"], over_csv
    assert layers() == 1
    # Large files are imported by a job: the same cap, the job fails naming the feature.
    padded = [point(1, 2, pad="x" * 400) for _ in range(6_000)] + [_line(51)]
    big = _collection(padded)
    assert len(big) > service_import.INLINE_IMPORT_BYTES
    queued = post(big, "big.geojson")
    assert queued.status_code == 202, queued.text
    deadline = time.monotonic() + 60
    while True:
        job = client.get(queued.json()["status_url"], headers=headers).json()
        if job["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert job["status"] == "failed", job
    assert "features[6000]" in str(job["error"]), job
    assert "WORLDBASE_MAX_FEATURE_VERTICES" in str(job["error"]), job
    assert layers() == 1
