"""Objects written as the seed's schemas say: POST /objects, PUT/PATCH/DELETE /objects/{id},
by an admin or the source's token, through the ingestion path (history, log, live events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.apps.osm.conftest import OSM, node, total_count
from tests.builders import assert_error, auth_headers, register_user
from worldbase.settings import Settings


def _body(source_id: str, **values: Any) -> dict[str, Any]:
    return {
        "osm_id": "123456",
        "type": "node",
        "tags": {"highway": "traffic_signals"},
        "geom": "POINT(13.405 52.52)",
        "source_id": source_id,
        **values,
    }


def _history(client: TestClient, object_id: str) -> list[tuple[int, str]]:
    items = client.get(f"/objects/{object_id}/history").json()["items"]
    return [(h["version"], h["action"]) for h in items]


def _log(osm: OSM) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = osm.client.get("/admin/validation-log", headers=osm.admin).json()[
        "items"
    ]
    return items


def test_the_seeds_create_update_delete_with_the_source_token(osm: OSM, client: TestClient) -> None:
    source, token = osm.source()
    headers = auth_headers(token)
    with client.websocket_connect("/ws/seed") as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe"})
        assert ws.receive_json()["type"] == "subscribed"
        created = client.post("/objects", json=_body(source["id"]), headers=headers)
        assert created.status_code == 201, created.text
        obj = created.json()
        assert (obj["osm_id"], obj["type"], obj["version"], obj["source_id"]) == (
            "123456",
            "node",
            1,
            source["id"],
        )
        assert obj["geom"] == {"type": "Point", "coordinates": [13.405, 52.52]}
        assert obj["tags"] == {"highway": "traffic_signals"}
        event = ws.receive_json()
        assert event["type"] == "object.created" and event["object"]["id"] == obj["id"]

        patched = client.patch(
            f"/objects/{obj['id']}", json={"tags": {"highway": "crossing"}}, headers=headers
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["version"] == 2 and patched.json()["geom"] == obj["geom"]
        assert ws.receive_json()["type"] == "object.modified"

        moved = client.put(
            f"/objects/{obj['id']}",
            json={"geom": {"type": "Point", "coordinates": [13.5, 52.6]}},
            headers=headers,
        ).json()
        assert moved["version"] == 3 and moved["tags"] == {"highway": "crossing"}
        assert moved["geom"]["coordinates"] == [13.5, 52.6]
        assert ws.receive_json()["type"] == "object.modified"

        # The same again: no new version.
        same = client.patch(f"/objects/{obj['id']}", json={"geom": "POINT (13.5 52.6)"})
        assert same.status_code == 401
        same = client.patch(
            f"/objects/{obj['id']}", json={"geom": "POINT (13.5 52.6)"}, headers=headers
        )
        assert same.json()["version"] == 3

        deleted = client.delete(f"/objects/{obj['id']}", headers=headers)
        assert deleted.status_code == 204 and deleted.content == b""
        assert ws.receive_json()["type"] == "object.deleted"
    gone = client.get(f"/objects/{obj['id']}").json()
    assert gone["deleted"] is True and gone["version"] == 4
    assert total_count(client.get("/objects")) == 0
    assert total_count(client.get("/objects?include_deleted=true")) == 1
    assert client.delete(f"/objects/{obj['id']}", headers=headers).status_code == 204
    assert _history(client, obj["id"]) == [
        (4, "delete"),
        (3, "modify"),
        (2, "modify"),
        (1, "create"),
    ]
    # A deleted object comes back as a new version (PUT, or POST of the same OSM id).
    back = client.post("/objects", json=_body(source["id"], osm_id=123456), headers=headers)
    assert back.status_code == 201 and back.json()["id"] == obj["id"]
    assert (back.json()["version"], back.json()["deleted"]) == (5, False)


def test_geometry_as_wkt_geojson_or_geojson_text(osm: OSM, client: TestClient) -> None:
    source, _ = osm.source()
    line = {"type": "LineString", "coordinates": [[13.4, 52.5], [13.41, 52.51]]}
    cases = [
        ("node", "1", "SRID=4326;POINT(1 2)", {"type": "Point", "coordinates": [1.0, 2.0]}),
        ("node", "2", '{"type": "Point", "coordinates": [3, 4]}', None),
        ("way", "3", line, line),
        ("way", "4", "LINESTRING (13.4 52.5, 13.41 52.51)", line),
        ("relation", "5", "MULTIPOINT ((1 1), (2 2))", None),
    ]
    for typ, osm_id, geom, expected in cases:
        body = _body(source["id"], type=typ, osm_id=osm_id, geom=geom, tags={})
        response = client.post("/objects", json=body, headers=osm.admin)
        assert response.status_code == 201, (geom, response.text)
        if expected is not None:
            assert response.json()["geom"] == expected
    assert [o["osm_id"] for o in client.get("/objects/way").json()] in (["3", "4"], ["4", "3"])


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"geom": "POINT(0 0"}, "geom"),
        ({"geom": "NOT WKT"}, "geom"),
        ({"geom": "POINT EMPTY"}, "geom"),
        ({"geom": "SRID=3857;POINT(1 1)"}, "geom"),
        ({"geom": "POINT(200 0)"}, "geom"),
        ({"geom": "LINESTRING(0 0, 1 1)"}, "geom"),  # a node is a point
        ({"geom": '{"type": "Point"'}, "geom"),
        ({"geom": {"type": "Point", "coordinates": [0, 95]}}, "geom"),
        ({"type": "way", "geom": "POINT(1 1)"}, "geom"),
        ({"tags": {"k" * 300: "v"}}, "tags"),
    ],
)
def test_bad_objects_are_422_and_logged(
    osm: OSM, client: TestClient, values: dict[str, Any], field: str
) -> None:
    source, token = osm.source()
    body = assert_error(
        client.post("/objects", json=_body(source["id"], **values), headers=auth_headers(token)),
        422,
    )
    assert body["detail"][0]["loc"] == ["body", field]
    log = _log(osm)
    assert len(log) == 1 and log[0]["source_id"] == source["id"]
    assert log[0]["channel"] == "rest" and log[0]["osm_type"] == values.get("type", "node")
    assert total_count(client.get("/objects?include_deleted=true")) == 0


@pytest.mark.parametrize(
    "values",
    [
        {"type": "area"},
        {"osm_id": "abc"},
        {"osm_id": True},
        {"tags": {"name": 5}},
        {"geom": None},
        {"geom": 5},
        {"version": 3},  # not a field of the seed's OSMObjectCreate
        {"source_id": None},
    ],
)
def test_malformed_bodies_are_422(osm: OSM, client: TestClient, values: dict[str, Any]) -> None:
    source, _ = osm.source()
    body = _body(source["id"]) | values
    assert_error(client.post("/objects", json=body, headers=osm.admin), 422)


def test_unknown_source_inactive_source_duplicates_and_filters(
    osm: OSM, client: TestClient
) -> None:
    source, token = osm.source(tag_filter=["highway"])
    headers = auth_headers(token)
    unknown = assert_error(client.post("/objects", json=_body("nope"), headers=osm.admin), 422)
    assert unknown["detail"][0]["loc"] == ["body", "source_id"]
    assert_error(client.post("/objects", json=_body("nope"), headers=headers), 422)
    filtered = client.post(
        "/objects", json=_body(source["id"], tags={"shop": "x"}), headers=headers
    )
    assert "tag filter" in assert_error(filtered, 422)["message"]
    obj = client.post("/objects", json=_body(source["id"]), headers=headers).json()
    duplicate = assert_error(
        client.post("/objects", json=_body(source["id"]), headers=headers), 409
    )
    assert duplicate["detail"] == {"id": obj["id"]}
    path = f"/objects/{obj['id']}"
    assert_error(client.patch(path, json={"tags": {"shop": "x"}}, headers=headers), 422)
    assert_error(client.patch(path, json={"geom": "POINT(x y)"}, headers=headers), 422)
    assert_error(client.patch(path, json={"name": "x"}, headers=headers), 422)
    osm.client.post(f"/data-sources/{source['id']}/deactivate", headers=osm.admin)
    body = _body(source["id"], osm_id="9")
    assert_error(client.post("/objects", json=body, headers=headers), 409)
    assert_error(client.post("/objects", json=body, headers=osm.admin), 409)
    assert_error(client.patch(path, json={"tags": {"highway": "x"}}, headers=headers), 409)
    assert_error(client.delete(path, headers=osm.admin), 409)
    assert client.get(path).json()["version"] == 1


def test_who_may_write(osm: OSM, client: TestClient) -> None:
    source, token = osm.source()
    other, other_token = osm.source(name="other")
    _, user_token = register_user(client)
    user = auth_headers(user_token)
    body = _body(source["id"])
    # POST: anonymous, bad tokens, another user, another source's token.
    assert_error(client.post("/objects", json=body), 401)
    assert_error(client.post("/objects", json=body, headers=auth_headers("wbsrc_nope")), 401)
    assert_error(client.post("/objects", json=body, headers=auth_headers("garbage")), 401)
    assert_error(client.post("/objects", json=body, headers=user), 403)
    assert_error(client.post("/objects", json=body, headers=auth_headers(other_token)), 403)
    admin_made = client.post("/objects", json=body, headers=osm.admin)
    assert admin_made.status_code == 201 and admin_made.json()["source_id"] == source["id"]
    obj = admin_made.json()
    path = f"/objects/{obj['id']}"
    patch = {"tags": {"highway": "stop"}}
    for method, kwargs in (("PATCH", {"json": patch}), ("PUT", {"json": patch}), ("DELETE", {})):
        assert_error(client.request(method, path, **kwargs), 401)
        assert_error(client.request(method, path, headers=user, **kwargs), 403)
        other_headers = auth_headers(other_token)
        assert_error(client.request(method, path, headers=other_headers, **kwargs), 403)
        missing = "/objects/00000000-0000-0000-0000-000000000000"
        assert_error(client.request(method, missing, headers=osm.admin, **kwargs), 404)
        assert_error(client.request(method, "/objects/node", headers=osm.admin, **kwargs), 404)
    assert client.get(path).json()["version"] == 1  # nothing was written
    assert client.patch(path, json=patch, headers=auth_headers(token)).json()["version"] == 2
    assert client.put(path, json={"tags": {"a": "b"}}, headers=osm.admin).json()["version"] == 3
    assert client.delete(path, headers=osm.admin).status_code == 204
    # A rotated token stops working.
    rotated = client.post(f"/data-sources/{source['id']}/token", headers=osm.admin).json()
    assert_error(client.put(path, json=patch, headers=auth_headers(token)), 401)
    revived = client.put(path, json=patch, headers=auth_headers(rotated["token"]))
    assert revived.status_code == 200 and revived.json()["deleted"] is False
    # Objects whose source is gone: administrators only.
    client.delete(f"/data-sources/{source['id']}", headers=osm.admin)
    assert client.get(path).json()["source_id"] is None
    assert_error(client.patch(path, json=patch, headers=auth_headers(other_token)), 403)
    assert client.patch(path, json={"tags": {}}, headers=osm.admin).json()["tags"] == {}
    assert other["id"] != source["id"]


def test_writes_follow_the_ingestion_rules(osm: OSM, client: TestClient) -> None:
    """A node moved through PATCH reshapes its ways; a way's tags change keeps its nodes."""
    source, token = osm.source()
    elements = [
        node(1, 0, 0),
        node(2, 1, 1),
        {"type": "way", "id": 10, "version": 1, "nodes": [1, 2], "tags": {"highway": "path"}},
    ]
    osm.push(source["id"], token, {"elements": elements})
    headers = auth_headers(token)
    way = client.get("/objects/osm/way/10").json()
    renamed = client.patch(
        f"/objects/{way['id']}", json={"tags": {"highway": "track"}}, headers=headers
    ).json()
    assert renamed["refs"] == [1, 2] and renamed["version"] == 2
    first = client.get("/objects/osm/node/1").json()
    client.patch(f"/objects/{first['id']}", json={"geom": "POINT(0.5 0)"}, headers=headers)
    assert client.get("/objects/osm/way/10").json()["geom"]["coordinates"] == [[0.5, 0], [1, 1]]
    # A way given its own geometry keeps it.
    own = "LINESTRING(5 5, 6 6)"
    assert (
        client.put(f"/objects/{way['id']}", json={"geom": own}, headers=headers).json()["refs"]
        is None
    )
    client.patch(f"/objects/{first['id']}", json={"geom": "POINT(0.7 0)"}, headers=headers)
    assert client.get("/objects/osm/way/10").json()["geom"]["coordinates"] == [[5, 5], [6, 6]]
    # A relation without a geometry (unknown member ways) takes new tags.
    member = {"type": "way", "ref": 999, "role": "outer"}
    relation = {"type": "relation", "id": 30, "version": 1, "members": [member], "tags": {}}
    osm.push(source["id"], token, {"elements": [relation]})
    stored = client.get("/objects/osm/relation/30").json()
    assert stored["geom"] is None
    tagged = client.patch(
        f"/objects/{stored['id']}", json={"tags": {"type": "multipolygon"}}, headers=headers
    ).json()
    assert (tagged["version"], tagged["geom"], tagged["refs"]) == (2, None, [member])
    # A newer versioned push still applies on top of REST writes.
    osm.push(source["id"], token, {"elements": [node(2, 2, 2, version=50)]})
    assert client.get("/objects/osm/node/2").json()["version"] == 50


def test_large_geometries_are_parsed_off_the_loop_and_bounded(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(worldbase_max_feature_vertices=6000))
    osm = OSM(client)
    source, token = osm.source()
    headers = auth_headers(token)
    coords = ", ".join(f"{i / 1000:.6f} {i / 2000:.6f}" for i in range(5000))
    wkt = f"LINESTRING ({coords})"
    assert len(wkt) > 64 * 1024  # parsed in a worker process
    body = _body(source["id"], type="way", osm_id="77", geom=wkt)
    made = client.post("/objects", json=body, headers=headers)
    assert made.status_code == 201, made.text
    assert len(made.json()["geom"]["coordinates"]) == 5000
    too_many = ", ".join(f"{i / 1000:.6f} 1" for i in range(6001))
    refused = assert_error(
        client.patch(
            f"/objects/{made.json()['id']}",
            json={"geom": f"LINESTRING ({too_many})"},
            headers=headers,
        ),
        422,
    )
    assert "WORLDBASE_MAX_FEATURE_VERTICES" in refused["message"]
    assert refused["detail"][0]["loc"] == ["body", "geom"]
    bad = assert_error(
        client.patch(
            f"/objects/{made.json()['id']}", json={"geom": wkt[:-1] + ", x)"}, headers=headers
        ),
        422,
    )
    assert "WKT" in bad["message"]
    assert client.get(f"/objects/{made.json()['id']}").json()["version"] == 1
