"""Objects (public reads, filters, paging), data sources (admin CRUD), admin endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from tests.apps.osm.conftest import OSM, node, total_count
from tests.builders import assert_error, auth_headers, register_user
from worldbase.settings import Settings


@pytest.fixture
def loaded(osm: OSM) -> OSM:
    source, token = osm.source()
    elements = [
        node(1, 13.40, 52.50, amenity="cafe", name="A"),
        node(2, 13.41, 52.51, amenity="cafe"),
        node(3, 13.42, 52.52, amenity="bar"),
        node(4, 2.35, 48.85, amenity="cafe"),
        node(5, 13.43, 52.53, shop="bakery"),
        {"type": "way", "id": 10, "version": 1, "nodes": [1, 2], "tags": {"highway": "path"}},
    ]
    osm.push(source["id"], token, {"elements": elements})
    osm.source_id = source["id"]  # type: ignore[attr-defined]
    osm.token = token  # type: ignore[attr-defined]
    return osm


def _ids(response: object) -> set[str]:
    body = response.json()  # type: ignore[attr-defined]
    assert isinstance(body, list)  # the seed's List[OSMObject]
    return {o["osm_id"] for o in body}


def _links(response: object) -> dict[str, str]:
    """rel -> URL of an RFC 8288 Link header."""
    links = {}
    for part in response.headers["Link"].split(", "):  # type: ignore[attr-defined]
        url, rel = part.split("; ")
        assert url.startswith("<") and url.endswith(">") and rel.startswith('rel="')
        links[rel[5:-1]] = url[1:-1]
    return links


def test_objects_are_public_and_filtered(loaded: OSM, client: TestClient) -> None:
    everything = client.get("/objects")
    assert everything.status_code == 200 and total_count(everything) == 6
    assert everything.json()[0].keys() >= {"id", "osm_id", "type", "tags", "geom", "source_id"}
    assert _ids(client.get("/objects?type=way")) == {"10"}
    assert _ids(client.get("/objects?tag=amenity=cafe")) == {"1", "2", "4"}
    assert _ids(client.get("/objects?tag=amenity")) == {"1", "2", "3", "4"}
    assert _ids(client.get("/objects?tag=amenity=cafe&tag=name")) == {"1"}
    berlin = client.get("/objects?bbox=13.3,52.4,13.5,52.6&tag=amenity=cafe")
    assert _ids(berlin) == {"1", "2"}
    assert _ids(client.get("/objects?bbox=13.405,52.45,13.5,52.505&type=way")) == {"10"}
    assert total_count(client.get(f"/objects?source_id={loaded.source_id}")) == 6  # type: ignore[attr-defined]
    assert total_count(client.get("/objects?source_id=nope")) == 0
    page = client.get("/objects?limit=2&offset=1")
    assert (len(page.json()), total_count(page)) == (2, 6)
    # Also as another user, and as admin: same answers.
    _, token = register_user(client)
    assert total_count(client.get("/objects", headers=auth_headers(token))) == 6
    assert total_count(client.get("/objects", headers=loaded.admin)) == 6


def test_paging_in_link_headers(loaded: OSM, client: TestClient) -> None:
    first = client.get("/objects?tag=amenity&tag=name&limit=2&tag=amenity=cafe")
    assert total_count(first) == 1 and _links(first).keys() == {"first", "last"}
    seen: list[str] = []
    url: str | None = "/objects?limit=4&type=node&tag=amenity"
    while url:
        response = client.get(url)
        assert total_count(response) == 4
        seen += [o["osm_id"] for o in response.json()]
        url = _links(response).get("next")
    assert sorted(seen) == ["1", "2", "3", "4"]
    middle = client.get("/objects?limit=1&offset=1&tag=amenity&tag=amenity")
    links = _links(middle)
    assert links.keys() == {"first", "prev", "next", "last"}
    # Every other parameter is kept, repeated ones too; limit/offset are replaced.
    assert links["next"].endswith("/objects?tag=amenity&tag=amenity&limit=1&offset=2")
    assert links["prev"].endswith("offset=0") and links["last"].endswith("offset=3")
    assert links["first"].startswith("http")
    assert (
        client.get(links["next"]).json()
        == client.get("/objects?tag=amenity&offset=2&limit=1").json()
    )
    empty = client.get("/objects?source_id=nope")
    assert empty.json() == [] and _links(empty).keys() == {"first", "last"}
    past = client.get("/objects?offset=100")
    assert past.json() == [] and _links(past)["prev"].endswith("offset=0")


def test_browsers_may_read_the_paging_headers(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(cors_origins='["http://localhost:3000"]'))
    response = client.get("/objects", headers={"Origin": "http://localhost:3000"})
    exposed = response.headers["Access-Control-Expose-Headers"].lower()
    assert "x-total-count" in exposed and "link" in exposed
    assert response.headers["X-Total-Count"].isdigit() and 'rel="first"' in response.headers["Link"]


def test_objects_by_type(loaded: OSM, client: TestClient) -> None:
    nodes = client.get("/objects/node")
    assert total_count(nodes) == 5 and {o["type"] for o in nodes.json()} == {"node"}
    assert _ids(client.get("/objects/way")) == {"10"}
    assert client.get("/objects/relation").json() == []
    assert _ids(client.get("/objects/node?tag=amenity=cafe&bbox=13.3,52.4,13.5,52.6")) == {"1", "2"}
    page = client.get("/objects/node?limit=2&offset=2")
    assert len(page.json()) == 2 and _links(page)["next"].endswith("/objects/node?limit=2&offset=4")
    assert_error(client.get("/objects/node?limit=0"), 422)
    # Ids still reach the object routes.
    cafe = client.get("/objects/osm/node/1").json()
    assert client.get(f"/objects/{cafe['id']}").json()["osm_id"] == "1"
    assert_error(client.get("/objects/area"), 404)
    assert_error(client.get("/objects/node/history"), 404)


def test_changed_since(loaded: OSM, client: TestClient) -> None:
    time.sleep(0.05)
    cutoff = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    loaded.push(loaded.source_id, loaded.token, {"elements": [node(3, 13.42, 52.52, 2)]})  # type: ignore[attr-defined]
    assert _ids(client.get("/objects", params={"changed_since": cutoff})) == {"3"}
    naive = datetime.now(UTC).replace(tzinfo=None).isoformat()
    assert total_count(client.get("/objects", params={"changed_since": naive})) == 0


@pytest.mark.parametrize(
    "query",
    [
        "type=area",
        "bbox=1,2,3",
        "bbox=0,0,200,1",
        "bbox=5,5,1,1",
        "tag==cafe",
        "limit=0",
        "limit=5000",
        "offset=-1",
        "changed_since=yesterday",
    ],
)
def test_bad_object_queries_are_422(client: TestClient, query: str) -> None:
    assert_error(client.get(f"/objects?{query}"), 422)


def test_object_reads(loaded: OSM, client: TestClient) -> None:
    cafe = client.get("/objects/osm/node/1").json()
    assert cafe["tags"] == {"amenity": "cafe", "name": "A"}
    assert cafe["geom"] == {"type": "Point", "coordinates": [13.4, 52.5]}
    assert client.get(f"/objects/{cafe['id']}").json() == cafe
    assert client.get(f"/objects/{cafe['id']}/history").json()["total"] == 1
    assert_error(client.get("/objects/osm/node/999"), 404)
    assert_error(client.get("/objects/osm/area/1"), 422)
    assert_error(client.get("/objects/osm/node/abc"), 422)
    assert_error(client.get("/objects/00000000-0000-0000-0000-000000000000"), 404)
    assert_error(client.get("/objects/nope/history"), 404)


def test_data_source_crud_is_admin_only(osm: OSM, client: TestClient) -> None:
    _, user_token = register_user(client)
    user = auth_headers(user_token)
    info = {"url": "http://x", "query": "[out:json];node[amenity=cafe];out;"}
    body = {"name": "cafes", "type": "overpass", "connection_info": info}
    assert_error(client.post("/data-sources", json=body), 401)
    assert_error(client.post("/data-sources", json=body, headers=user), 403)
    created = client.post("/data-sources", json=body, headers=osm.admin)
    assert created.status_code == 201
    source = created.json()
    assert source["token"].startswith("wbsrc_") and source["is_active"] is True
    url = f"/data-sources/{source['id']}"
    for method, path in (
        ("GET", "/data-sources"),
        ("GET", url),
        ("PATCH", url),
        ("DELETE", url),
        ("POST", f"{url}/activate"),
        ("POST", f"{url}/deactivate"),
        ("POST", f"{url}/token"),
    ):
        kwargs = {"json": {"name": "x"}} if method == "PATCH" else {}
        assert_error(client.request(method, path, **kwargs), 401)
        assert_error(client.request(method, path, headers=user, **kwargs), 403)
    read = client.get(url, headers=osm.admin).json()
    assert "token" not in read and "token_hash" not in read
    assert client.get("/data-sources", headers=osm.admin).json()["total"] == 1
    patched = client.patch(
        url, json={"description": "hourly", "tag_filter": ["shop"]}, headers=osm.admin
    )
    assert patched.json()["description"] == "hourly" and patched.json()["tag_filter"] == ["shop"]
    assert client.post(f"{url}/deactivate", headers=osm.admin).json()["is_active"] is False
    assert client.post(f"{url}/activate", headers=osm.admin).json()["is_active"] is True
    assert client.delete(url, headers=osm.admin).status_code == 204
    assert_error(client.get(url, headers=osm.admin), 404)
    assert_error(client.delete(url, headers=osm.admin), 404)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x", "type": "ftp"},
        {"name": "x", "unknown": 1},
        {"name": "x", "area": {"type": "Point", "coordinates": [0, 0]}},
        {"name": "x", "area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}},
        {"name": "x", "tag_filter": ["=cafe"]},
    ],
)
def test_bad_data_source_input_is_422_and_writes_nothing(
    osm: OSM, client: TestClient, body: dict[str, object]
) -> None:
    assert_error(client.post("/data-sources", json=body, headers=osm.admin), 422)
    assert client.get("/data-sources", headers=osm.admin).json()["total"] == 0


def test_patch_cannot_null_the_name(osm: OSM, client: TestClient) -> None:
    source, _ = osm.source()
    assert_error(
        client.patch(f"/data-sources/{source['id']}", json={"name": None}, headers=osm.admin), 422
    )


def test_deleting_a_source_keeps_its_objects(loaded: OSM, client: TestClient) -> None:
    client.delete(f"/data-sources/{loaded.source_id}", headers=loaded.admin)  # type: ignore[attr-defined]
    assert client.get("/objects/osm/node/1").json()["source_id"] is None


def test_admin_stats_and_validation_log(loaded: OSM, client: TestClient) -> None:
    loaded.push(
        loaded.source_id,  # type: ignore[attr-defined]
        loaded.token,  # type: ignore[attr-defined]
        {"elements": [node(1, 13.4, 52.5, 2), {"type": "node", "id": 99, "lat": 100, "lon": 0}]},
    )
    _, user_token = register_user(client)
    for path in ("/admin/stats", "/admin/validation-log"):
        assert_error(client.get(path), 401)
        assert_error(client.get(path, headers=auth_headers(user_token)), 403)
    stats = client.get("/admin/stats", headers=loaded.admin).json()
    assert stats["objects"] == {"node": 5, "way": 1, "relation": 0}
    assert stats["history_entries"] == 7 and stats["validation_log_entries"] == 1
    assert stats["data_sources"] == stats["active_data_sources"] == 1
    assert stats["last_ingest_at"] is not None
    log = client.get("/admin/validation-log", headers=loaded.admin).json()
    assert log["items"][0]["osm_id"] == "99" and log["items"][0]["payload"]["lat"] == 100
    other = client.get("/admin/validation-log?source_id=other", headers=loaded.admin).json()
    assert other["total"] == 0
