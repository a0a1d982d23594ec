"""Vector features: GeoJSON in and out, bbox and paging, all-or-nothing writes, permissions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.apps.samsyn.conftest import CALLERS, WMS_CONFIG, Team, feature, point
from tests.builders import assert_error
from worldbase.settings import Settings


def _features(team: Team, layer_id: str, query: str = "", who: str = "owner") -> dict:
    response = team.client.get(f"/api/layers/{layer_id}/features{query}", headers=team.as_(who))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    return dict(response.json())


def test_add_list_bbox_and_paging(team: Team) -> None:
    layer = team.create_layer()
    created = team.add_features(layer["id"], *[point(i, i / 2, n=i) for i in range(5)])
    assert [f["display_order"] for f in created] == [0, 1, 2, 3, 4]
    body = _features(team, layer["id"])
    assert body["type"] == "FeatureCollection" and body["numberMatched"] == 5
    assert body["features"][2]["geometry"] == {"type": "Point", "coordinates": [2.0, 1.0]}
    assert body["features"][2]["properties"] == {"n": 2}
    page = _features(team, layer["id"], "?limit=2&offset=0")
    assert [f["properties"]["n"] for f in page["features"]] == [0, 1]
    next_link = next(link["href"] for link in page["links"] if link["rel"] == "next")
    page2 = team.client.get(next_link, headers=team.as_("owner")).json()
    assert [f["properties"]["n"] for f in page2["features"]] == [2, 3]
    last = _features(team, layer["id"], "?limit=2&offset=4")
    assert [link["rel"] for link in last["links"]] == ["self", "prev"]
    boxed = _features(team, layer["id"], "?bbox=0.5,0,3.5,1.5")
    assert sorted(f["properties"]["n"] for f in boxed["features"]) == [1, 2, 3]
    assert boxed["numberMatched"] == 3
    stats = team.client.get(f"/api/layers/{layer['id']}", headers=team.as_("owner")).json()
    config = stats["source_config"]
    assert config["featureCount"] == 5 and config["geometryType"] == "Point"
    assert config["bounds"][0][0] == pytest.approx(0, abs=1e-4)
    assert config["bounds"][1] == [pytest.approx(4, abs=1e-4), pytest.approx(2, abs=1e-4)]


@pytest.mark.parametrize(
    "bbox", ["1,2,3", "a,b,c,d", "3,0,1,1", "0,3,1,1", "-200,0,1,1", "0,0,1,95", "nan,0,1,1"]
)
def test_bad_bbox_is_422(team: Team, bbox: str) -> None:
    layer = team.create_layer()
    response = team.client.get(
        f"/api/layers/{layer['id']}/features?bbox={bbox}", headers=team.as_("owner")
    )
    assert_error(response, 422)


def test_a_bad_feature_fails_the_whole_request(team: Team) -> None:
    layer = team.create_layer()
    team.add_features(layer["id"], feature(name="kept"))
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    cases = [
        ([feature(name="ok"), feature(bowtie)], "features[1].geometry"),
        ([feature(name="ok"), point(200, 0)], "features[1].geometry.coordinates[0]"),
        (
            [feature(name="ok"), {"type": "Feature", "geometry": None, "properties": {}}],
            "features[1].geometry",
        ),
        (
            [
                feature(name="ok"),
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [0, 0]},
                    "properties": [1],
                },
            ],
            "features[1].properties",
        ),
        ([feature(name="ok") | {"display_order": -1}], "features[0].display_order"),
    ]
    url = f"/api/layers/{layer['id']}/features"
    for features, path in cases:
        response = team.client.post(
            url, json={"type": "FeatureCollection", "features": features}, headers=team.as_("owner")
        )
        body = assert_error(response, 422)
        assert path in body["message"], body
    for bad in (
        {"type": "FeatureCollection", "features": []},
        {"type": "Point", "coordinates": [0, 0]},
        [1],
    ):
        assert_error(team.client.post(url, json=bad, headers=team.as_("owner")), 422)
    body = _features(team, layer["id"])
    assert [f["properties"] for f in body["features"]] == [{"name": "kept"}]
    config = team.client.get(f"/api/layers/{layer['id']}", headers=team.as_("owner")).json()[
        "source_config"
    ]
    assert config["featureCount"] == 1 and config["revision"] == 1


def test_features_only_on_vector_layers(team: Team) -> None:
    wms = team.create_layer(source_type="wms", source_config=WMS_CONFIG)
    url = f"/api/layers/{wms['id']}/features"
    assert_error(team.client.post(url, json=feature(), headers=team.as_("owner")), 409)
    assert_error(team.client.get(url, headers=team.as_("owner")), 409)


def test_update_and_delete_one_feature(team: Team) -> None:
    layer = team.create_layer()
    a, b = team.add_features(layer["id"], point(0, 0, n="a"), point(10, 10, n="b"))
    url = f"/api/layers/{layer['id']}/features/{b['id']}"
    response = team.client.put(
        url,
        json={
            "geometry": {"type": "LineString", "coordinates": [[1, 1], [2, 3]]},
            "properties": {"n": "B"},
            "display_order": 7,
        },
        headers=team.as_("owner"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["properties"] == {"n": "B"} and response.json()["display_order"] == 7
    config = team.client.get(f"/api/layers/{layer['id']}", headers=team.as_("owner")).json()[
        "source_config"
    ]
    assert config["geometryType"] == "Mixed" and config["geometryTypes"] == ["LineString", "Point"]
    assert config["bounds"][1] == [pytest.approx(2, abs=1e-4), pytest.approx(3, abs=1e-4)]
    for bad in (
        {"geometry": {"type": "Point", "coordinates": [0, 95]}},
        {"properties": 3},
        {},
        {"colour": 1},
    ):
        assert_error(team.client.put(url, json=bad, headers=team.as_("owner")), 422)
    assert team.client.delete(url, headers=team.as_("owner")).status_code == 204
    assert_error(team.client.delete(url, headers=team.as_("owner")), 404)
    other = team.create_layer()
    assert_error(
        team.client.delete(
            f"/api/layers/{other['id']}/features/{a['id']}", headers=team.as_("owner")
        ),
        404,
    )
    config = team.client.get(f"/api/layers/{layer['id']}", headers=team.as_("owner")).json()[
        "source_config"
    ]
    assert config["featureCount"] == 1 and config["geometryType"] == "Point"


def test_feature_permissions(team: Team) -> None:
    for editable in ("creator-only", "everyone"):
        for who in CALLERS:
            _feature_permissions(team, who, editable)


def _feature_permissions(team: Team, who: str, editable: str) -> None:
    map_ = team.shared_map()
    layer = team.create_layer(editable=editable)
    team.add_layer(map_["id"], layer["id"])
    (existing,) = team.add_features(layer["id"], point(1, 1))
    read = {"stranger": 404, "anonymous": 404}.get(who, 200)
    assert (
        team.client.get(f"/api/layers/{layer['id']}/features", headers=team.as_(who)).status_code
        == read
    )
    if who in ("owner", "admin") or (editable == "everyone" and who in ("editor", "viewer")):
        write = 201
    else:
        write = {"anonymous": 401, "stranger": 404}.get(who, 403)
    url = f"/api/layers/{layer['id']}/features"
    response = team.client.post(url, json=point(2, 2), headers=team.as_(who))
    assert response.status_code == write, response.text
    item = f"{url}/{existing['id']}"
    response = team.client.put(item, json={"properties": {"x": 1}}, headers=team.as_(who))
    assert response.status_code == (200 if write == 201 else write)
    response = team.client.delete(item, headers=team.as_(who))
    assert response.status_code == (204 if write == 201 else write)


# Pages of the five points n=0..4 at (n, n/2): the query, the n returned, the number matched
# and the links besides `self`.
PAGE_QUERIES = [
    ("", [0, 1, 2, 3, 4], 5, []),
    ("?limit=2", [0, 1], 5, ["next"]),
    ("?limit=2&offset=4", [4], 5, ["prev"]),
    ("?bbox=0.5,0,3.5,1.5", [1, 2, 3], 3, []),
    ("?bbox=0.5,0,3.5,1.5&limit=1&offset=1", [2], 3, ["next", "prev"]),
    ("?bbox=0.5,0,3.5,1.5&offset=10", [], 3, ["prev"]),  # past the end: counted apart
    ("?offset=10", [], 5, ["prev"]),
    ("?bbox=100,10,101,11", [], 0, []),  # nothing there
]


@pytest.mark.parametrize("is_global", [True, False])
def test_pages_by_bbox_limit_and_offset_for_every_reader(team: Team, is_global: bool) -> None:
    layer = team.create_layer(is_global=is_global)
    team.add_features(layer["id"], *[point(i, i / 2, n=i) for i in range(5)])
    callers = ["anonymous", "stranger", "owner", "admin"] if is_global else ["owner", "admin"]
    for who in callers:
        for query, returned, matched, links in PAGE_QUERIES:
            body = _features(team, layer["id"], query, who=who)
            assert [f["properties"]["n"] for f in body["features"]] == returned, (who, query)
            assert body["numberReturned"] == len(returned)
            assert body["numberMatched"] == matched, (who, query)
            assert [link["rel"] for link in body["links"]] == ["self", *links], (who, query)


@pytest.mark.parametrize(
    "query",
    ["?limit=0", "?limit=abc", "?limit=10001", "?offset=-1", "?bbox=", "?limit=", "?bbox=1,2"],
)
def test_a_malformed_page_query_is_422(team: Team, query: str) -> None:
    layer = team.create_layer(is_global=True)
    for who in ("anonymous", "owner"):
        response = team.client.get(
            f"/api/layers/{layer['id']}/features{query}", headers=team.as_(who)
        )
        assert_error(response, 422)


def test_reading_a_private_page_needs_access(team: Team) -> None:
    layer = team.create_layer()
    team.add_features(layer["id"], point(1, 1))
    url = f"/api/layers/{layer['id']}/features"
    for query in ("", "?limit=5", "?bbox=0,0,2,2"):
        assert_error(team.client.get(url + query, headers=team.as_("anonymous")), 404)
        assert_error(team.client.get(url + query, headers=team.as_("stranger")), 404)
        bad_token = {"Authorization": "Bearer not-a-token"}
        assert team.client.get(url + query, headers=bad_token).status_code == 401
        malformed = {"Authorization": "Basic abc"}
        assert team.client.get(url + query, headers=malformed).status_code in (401, 404)


# --- Vertex limits (issue 18, item 7) --------------------------------------------------------


def _line_feature(vertices: int) -> dict[str, Any]:
    coords = [[i % 90, (i // 90) % 90] for i in range(vertices)]
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords}}


def test_a_million_vertex_line_is_refused_by_default(team: Team) -> None:
    layer = team.create_layer()
    response = team.client.post(
        f"/api/layers/{layer['id']}/features",
        content=json.dumps(_line_feature(1_000_000)),
        headers=team.as_("owner") | {"Content-Type": "application/json"},
    )
    body = assert_error(response, 422)
    assert "WORLDBASE_MAX_FEATURE_VERTICES" in body["message"]
    assert body["detail"]["limit"] == 100_000


def test_vertex_limits_per_feature_and_per_request(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    team: Team,
) -> None:
    client = app_factory(
        make_settings(worldbase_max_feature_vertices=100, worldbase_max_request_vertices=250)
    )
    layer = team.create_layer()
    url, owner = f"/api/layers/{layer['id']}/features", team.as_("owner")
    ok = client.post(url, json=_line_feature(100), headers=owner)
    assert ok.status_code == 201, ok.text
    body = assert_error(client.post(url, json=_line_feature(101), headers=owner), 422)
    assert "WORLDBASE_MAX_FEATURE_VERTICES" in body["message"]
    three = {"type": "FeatureCollection", "features": [_line_feature(90)] * 3}
    body = assert_error(client.post(url, json=three, headers=owner), 422)
    assert "WORLDBASE_MAX_REQUEST_VERTICES" in body["message"]
    assert body["detail"]["path"].startswith("features[2]")
    feature_id = ok.json()["features"][0]["id"]
    update = {"geometry": _line_feature(101)["geometry"]}
    body = assert_error(client.put(f"{url}/{feature_id}", json=update, headers=owner), 422)
    assert "WORLDBASE_MAX_FEATURE_VERTICES" in body["message"]
    assert_error(client.post(url, content=b"[1, 2]", headers=owner), 422)
    assert_error(client.post(url, content=b"{not json", headers=owner), 422)
