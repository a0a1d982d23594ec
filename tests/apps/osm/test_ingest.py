"""REST push: formats, idempotency, per-element rejection, way geometry, authorization."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.apps.osm.conftest import OSM, node, total_count
from tests.builders import assert_error, auth_headers, register_user
from tests.conftest import truncate_all
from worldbase.settings import Settings


def test_overpass_json_is_stored_with_history_and_is_idempotent(osm: OSM) -> None:
    source, token = osm.source()
    payload = {
        "elements": [
            node(1, 13.4, 52.5, amenity="cafe", name="A"),
            node(2, 13.5, 52.5),
            {"type": "way", "id": 10, "version": 1, "nodes": [1, 2], "tags": {"highway": "path"}},
        ]
    }
    first = osm.push(source["id"], token, payload)
    assert (first["created"], first["rejected"], first["accepted"]) == (3, 0, 3)
    again = osm.push(source["id"], token, payload)
    assert (again["created"], again["modified"], again["unchanged"]) == (0, 0, 3)

    way = osm.client.get("/objects/osm/way/10").json()
    assert way["geom"] == {"type": "LineString", "coordinates": [[13.4, 52.5], [13.5, 52.5]]}
    assert way["refs"] == [1, 2] and way["source_id"] == source["id"]

    osm.push(source["id"], token, {"elements": [node(1, 13.41, 52.5, 2, amenity="bar")]})
    cafe = osm.client.get("/objects/osm/node/1").json()
    assert cafe["version"] == 2 and cafe["tags"] == {"amenity": "bar"}
    history = osm.client.get(f"/objects/{cafe['id']}/history").json()
    assert history["total"] == 2
    assert [(h["version"], h["action"]) for h in history["items"]] == [(2, "modify"), (1, "create")]
    assert history["items"][1]["tags"] == {"amenity": "cafe", "name": "A"}
    assert history["items"][1]["geom"]["coordinates"] == [13.4, 52.5]
    # An older version arriving late changes nothing.
    late = osm.push(source["id"], token, {"elements": [node(1, 0, 0, 1)]})
    assert late["unchanged"] == 1
    assert osm.client.get("/objects/osm/node/1").json()["version"] == 2


def test_bad_elements_are_rejected_and_logged_while_the_rest_is_stored(osm: OSM) -> None:
    source, token = osm.source()
    payload = {
        "elements": [
            node(1, 13.4, 52.5, name="ok"),
            {"type": "node", "id": 2, "lat": 95, "lon": 0, "version": 1},
            {"type": "node", "id": 3, "lat": 1, "lon": 1, "tags": {"name": 5}},
            {"type": "way", "id": 4, "nodes": [1, 999]},
            {"type": "blob", "id": 5},
        ]
    }
    result = osm.push(source["id"], token, payload)
    assert (result["created"], result["rejected"]) == (1, 4)
    reasons = {e["index"]: e["reason"] for e in result["errors"]}
    assert "latitude 95" in reasons[1]
    assert "not a string" in reasons[2]
    assert "unknown nodes [999]" in reasons[3]
    assert "node, way or relation" in reasons[4]
    log = osm.client.get("/admin/validation-log", headers=osm.admin).json()
    assert log["total"] == 4
    assert {e["source_id"] for e in log["items"]} == {source["id"]}
    assert {e["channel"] for e in log["items"]} == {"rest"}
    assert total_count(osm.client.get("/objects")) == 1


def test_a_batch_with_nothing_accepted_or_in_no_format_is_422(osm: OSM) -> None:
    source, token = osm.source()
    body = osm.push(source["id"], token, {"elements": [{"type": "node", "id": 1}]}, status=422)
    assert body["detail"]["rejected"] == 1
    body = osm.push(source["id"], token, {"whatever": 1}, status=422)
    assert "FeatureCollection" in body["message"]
    bad = osm.client.post(
        f"/data-sources/{source['id']}/ingest", json=[1, 2], headers=auth_headers(token)
    )
    assert_error(bad, 422)
    assert total_count(osm.client.get("/objects")) == 0
    assert osm.client.get("/admin/validation-log", headers=osm.admin).json()["total"] == 2


def test_geojson_feature_collection(osm: OSM) -> None:
    source, token = osm.source()
    payload = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]],
                },
                "properties": {
                    "osm_type": "way",
                    "osm_id": 7,
                    "version": 3,
                    "tags": {"building": "yes"},
                },
            },
            {
                "type": "Feature",
                "id": "node/8",
                "geometry": {"type": "Point", "coordinates": [2, 2]},
                "properties": {"amenity": "cafe"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [200, 2]},
                "properties": {"osm_type": "node", "osm_id": 9},
            },
        ],
    }
    result = osm.push(source["id"], token, payload)
    assert (result["created"], result["rejected"]) == (2, 1)
    assert result["errors"][0]["id"] == "9"
    way = osm.client.get("/objects/osm/way/7").json()
    assert way["geom"]["type"] == "Polygon" and way["version"] == 3
    cafe = osm.client.get("/objects/osm/node/8").json()
    assert cafe["tags"] == {"amenity": "cafe"} and cafe["version"] == 1
    # Without a version, the same content is unchanged and new content is the next version.
    payload["features"] = payload["features"][1:2]
    assert osm.push(source["id"], token, payload)["unchanged"] == 1
    payload["features"][0]["properties"] = {"amenity": "bar"}
    assert osm.push(source["id"], token, payload)["modified"] == 1
    assert osm.client.get("/objects/osm/node/8").json()["version"] == 2


def test_deletes_mark_objects_deleted_and_keep_history(osm: OSM) -> None:
    source, token = osm.source()
    osm.push(source["id"], token, {"elements": [node(1, 1, 1, amenity="cafe")]})
    deleted = {"type": "node", "id": 1, "version": 2, "visible": False}
    assert osm.push(source["id"], token, {"elements": [deleted]})["deleted"] == 1
    obj = osm.client.get("/objects/osm/node/1").json()
    assert obj["deleted"] is True and obj["tags"] == {"amenity": "cafe"}
    assert total_count(osm.client.get("/objects")) == 0
    assert total_count(osm.client.get("/objects?include_deleted=true")) == 1
    actions = [h["action"] for h in osm.client.get(f"/objects/{obj['id']}/history").json()["items"]]
    assert actions == ["delete", "create"]


def test_source_area_and_tag_filter(osm: OSM) -> None:
    area = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}
    source, token = osm.source(area=area, tag_filter=["amenity=cafe"])
    result = osm.push(
        source["id"],
        token,
        {
            "elements": [
                node(1, 5, 5, amenity="cafe"),
                node(2, 50, 5, amenity="cafe"),
                node(3, 5, 5, amenity="bar"),
            ]
        },
    )
    assert (result["created"], result["filtered"]) == (1, 2)


def test_push_authorization(osm: OSM, client: TestClient) -> None:
    source, token = osm.source()
    _, other_token = osm.source(name="other")
    url = f"/data-sources/{source['id']}/ingest"
    payload = {"elements": [node(1, 1, 1)]}
    assert_error(client.post(url, json=payload), 401)
    assert_error(client.post(url, json=payload, headers=auth_headers("wbsrc_wrong")), 401)
    assert_error(client.post(url, json=payload, headers=auth_headers(other_token)), 401)
    _, user_token = register_user(client)
    assert_error(client.post(url, json=payload, headers=auth_headers(user_token)), 403)
    assert client.post(url, json=payload, headers=osm.admin).json()["created"] == 1
    missing = "/data-sources/00000000-0000-0000-0000-000000000000/ingest"
    assert_error(client.post(missing, json=payload, headers=osm.admin), 404)
    # Inactive: 409 and nothing written.
    client.post(f"/data-sources/{source['id']}/deactivate", headers=osm.admin)
    body = assert_error(
        client.post(url, json={"elements": [node(2, 1, 1)]}, headers=auth_headers(token)), 409
    )
    assert "inactive" in body["message"]
    assert client.get("/objects/osm/node/2").status_code == 404
    # A rotated token replaces the old one.
    client.post(f"/data-sources/{source['id']}/activate", headers=osm.admin)
    new = client.post(f"/data-sources/{source['id']}/token", headers=osm.admin).json()["token"]
    assert_error(client.post(url, json=payload, headers=auth_headers(token)), 401)
    assert client.post(url, json=payload, headers=auth_headers(new)).status_code == 200


def test_a_moved_node_reshapes_the_stored_ways_that_use_it(osm: OSM) -> None:
    source, token = osm.source()
    square = [1, 2, 3, 4, 1]
    osm.push(
        source["id"],
        token,
        {
            "elements": [
                node(1, 0, 0),
                node(2, 1, 0),
                node(3, 1, 1),
                node(4, 0, 1),
                node(5, 5, 5),
                {"type": "way", "id": 10, "version": 1, "nodes": [1, 2], "tags": {}},
                {"type": "way", "id": 11, "version": 1, "nodes": square, "tags": {"area": "yes"}},
                {"type": "way", "id": 12, "version": 1, "nodes": [4, 5], "tags": {}},
                {"type": "way", "id": 13, "version": 1, "nodes": [5, 1], "tags": {}},
            ]
        },
    )
    osm.push(source["id"], token, {"elements": [{"type": "way", "id": 13, "action": "delete",
                                                 "version": 2, "nodes": [5, 1]}]})  # fmt: skip
    # Node 2 moves; way 12 changes in the same batch (its own new version rules).
    moved = osm.push(
        source["id"],
        token,
        {
            "elements": [
                node(2, 2, 0, 2),
                {"type": "way", "id": 12, "version": 2, "nodes": [4, 5, 2], "tags": {}},
            ]
        },
    )
    assert (moved["modified"], moved["reshaped"]) == (2, 2)

    line = osm.client.get("/objects/osm/way/10").json()
    assert line["geom"]["coordinates"] == [[0, 0], [2, 0]]
    assert line["version"] == 1  # OSM keeps a way's version when only its nodes move
    polygon = osm.client.get("/objects/osm/way/11").json()
    assert polygon["geom"]["type"] == "Polygon"
    assert polygon["geom"]["coordinates"][0][1] == [2, 0]
    assert osm.client.get("/objects/osm/way/12").json()["geom"]["coordinates"][-1] == [2, 0]
    deleted = osm.client.get("/objects/osm/way/13").json()
    assert deleted["deleted"] and deleted["geom"]["coordinates"] == [[5, 5], [0, 0]]

    history = osm.client.get(f"/objects/{line['id']}/history").json()["items"]
    assert [(h["version"], h["action"]) for h in history] == [(1, "modify"), (1, "create")]
    assert history[0]["geom"]["coordinates"] == [[0, 0], [2, 0]]

    # Re-sending the same node version changes nothing, ways included.
    again = osm.push(source["id"], token, {"elements": [node(2, 2, 0, 2)]})
    assert (again["unchanged"], again["reshaped"]) == (1, 0)


CAP = 5  # WORLDBASE_MAX_FEATURE_VERTICES of the capped app below


@pytest.fixture
def capped(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> OSM:
    client = app_factory(make_settings(worldbase_max_feature_vertices=CAP))
    client.portal.call(truncate_all, client.app.state.services)  # type: ignore[union-attr, attr-defined]
    return OSM(client)


def _nodes(count: int, start: int = 1) -> list[dict[str, Any]]:
    return [node(start + i, 13.0 + i / 100, 52.0 + (i % 2) / 100) for i in range(count)]


def _way(osm_id: int, refs: list[int], **extra: Any) -> dict[str, Any]:
    return {"type": "way", "id": osm_id, "version": 1, "nodes": refs, **extra}


def test_elements_over_the_vertex_cap_are_refused_naming_the_setting(capped: OSM) -> None:
    """Issue 18 item 7: WORLDBASE_MAX_FEATURE_VERTICES holds for OSM ingestion as for
    feature writes: an element with more positions is refused, the setting named."""
    source, token = capped.source()
    over_line = {"type": "LineString", "coordinates": [[i / 10, 1] for i in range(CAP + 1)]}
    geometry = [{"lon": i / 10, "lat": 2} for i in range(CAP + 1)]
    payload = {
        "elements": [
            *_nodes(CAP + 1),
            _way(10, list(range(1, CAP + 1))),  # at the cap: stored
            _way(11, list(range(1, CAP + 2))),  # one node more
            _way(12, [], geometry=geometry),  # an inline geometry one position over
        ]
    }
    result = capped.push(source["id"], token, payload)
    assert (result["created"], result["rejected"]) == (CAP + 2, 2), result
    reasons = {e["index"]: e["reason"] for e in result["errors"]}
    for index, way in ((CAP + 2, 11), (CAP + 3, 12)):
        assert f"way {way} has more than {CAP} positions" in reasons[index], reasons
        assert "WORLDBASE_MAX_FEATURE_VERTICES" in reasons[index]
    log = capped.client.get("/admin/validation-log", headers=capped.admin).json()
    assert all("WORLDBASE_MAX_FEATURE_VERTICES" in e["reason"] for e in log["items"])
    assert log["total"] == 2
    # A batch of nothing else: 422, the setting in the message.
    feature = {
        "type": "Feature",
        "geometry": over_line,
        "properties": {"osm_type": "way", "osm_id": 20, "highway": "path"},
    }
    refused = capped.push(
        source["id"], token, {"type": "FeatureCollection", "features": [feature]}, status=422
    )
    assert "WORLDBASE_MAX_FEATURE_VERTICES" in refused["message"], refused
    assert refused["detail"]["rejected"] == 1
    # A relation assembled from ways within the cap, its outline over it.
    ring = {
        "elements": [
            *(
                node(100 + i, 13 + math.cos(i * math.pi / 3), 52 + math.sin(i * math.pi / 3))
                for i in range(6)
            ),
            _way(30, [100, 101, 102, 103]),
            _way(31, [103, 104, 105, 100]),
            {
                "type": "relation",
                "id": 40,
                "version": 1,
                "tags": {"type": "multipolygon", "landuse": "forest"},
                "members": [
                    {"type": "way", "ref": 30, "role": "outer"},
                    {"type": "way", "ref": 31, "role": "outer"},
                ],
            },
        ]
    }
    assembled = capped.push(source["id"], token, ring)
    assert (assembled["created"], assembled["rejected"]) == (8, 1), assembled
    assert "relation 40 has more than" in assembled["errors"][0]["reason"]
    assert capped.client.get("/objects/osm/relation/40").status_code == 404
    # Within the cap (one way's ring of 5 positions), the same relation is stored.
    small = {
        "elements": [
            _way(32, [100, 101, 102, 103, 100]),
            {
                "type": "relation",
                "id": 41,
                "version": 1,
                "tags": {"type": "multipolygon", "landuse": "forest"},
                "members": [{"type": "way", "ref": 32, "role": "outer"}],
            },
        ]
    }
    assert capped.push(source["id"], token, small)["created"] == 2
    forest = capped.client.get("/objects/osm/relation/41").json()
    assert forest["geom"]["type"] in ("Polygon", "MultiPolygon"), forest
    # The WebSocket push: the same refusal in its ack.
    with capped.client.websocket_connect(f"/ws/data-source/{source['id']}?token={token}") as ws:
        ws.send_json({"batch_id": "b", "elements": [_way(50, list(range(1, CAP + 2)))]})
        ack = ws.receive_json()
    assert (ack["type"], ack["rejected"]) == ("ack", 1), ack
    assert "WORLDBASE_MAX_FEATURE_VERTICES" in ack["errors"][0]["reason"]
