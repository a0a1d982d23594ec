"""Importing vector files into new layers: inline when small, a job when large, all or nothing."""

from __future__ import annotations

import json
import time

from tests.apps.samsyn.conftest import Team, point
from tests.builders import assert_error


def _layers(team: Team) -> int:
    return int(team.client.get("/api/layers", headers=team.as_("owner")).json()["total"])


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
