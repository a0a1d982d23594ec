"""`/api/v1/layers/{layer_id}/features`: SamSyn's feature shapes over the features service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.apps.samsyn_v1.conftest import ClerkUser, assert_error, created

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[2.5, 54.5], [3.5, 54.5], [3.5, 55.5], [2.5, 55.5], [2.5, 54.5]]],
}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def url(layer: dict[str, Any], rest: str = "") -> str:
    return f"/api/v1/layers/{layer['id']}/features{rest}"


def vector_layer(
    api: httpx.Client, owner: ClerkUser, *, permission: str = "private", **values: Any
) -> dict[str, Any]:
    """A vector layer of `owner`'s, on a map of theirs with this permission level."""
    layer = created(api, owner, "/api/layers", {"name": "Zones", "source_type": "vector"} | values)
    map_ = created(api, owner, "/api/maps", {"name": "Plan", "permission_level": permission})
    created(api, owner, f"/api/maps/{map_['id']}/layers", {"layer_id": layer["id"]})
    return layer


def count(api: httpx.Client, layer: dict[str, Any], user: ClerkUser) -> int:
    answer = api.get(url(layer, "?limit=1000"), headers=user.headers)
    assert answer.status_code == 200, answer.text
    return len(answer.json())


def test_owner_creates_reads_updates_deletes(api: httpx.Client, owner: ClerkUser) -> None:
    layer = vector_layer(api, owner)
    body = {"geometry": SQUARE, "properties": {"name": "Dogger"}, "feature_type": "mpa"}
    answer = api.post(url(layer), json=body, headers=owner.headers)
    assert answer.status_code == 201, answer.text
    feature = answer.json()
    assert feature["layer_id"] == layer["id"]
    assert feature["geometry"] == SQUARE and feature["properties"] == {"name": "Dogger"}
    assert feature["feature_type"] == "mpa" and feature["created_at"] and feature["updated_at"]

    got = api.get(url(layer, f"/{feature['id']}"), headers=owner.headers).json()
    assert got == feature
    listed = api.get(url(layer), headers=owner.headers).json()
    assert [f["id"] for f in listed] == [feature["id"]]

    change = {"properties": {"name": "Dogger Bank"}, "feature_type": None}
    updated = api.put(url(layer, f"/{feature['id']}"), json=change, headers=owner.headers)
    assert updated.status_code == 200, updated.text
    assert updated.json()["properties"] == {"name": "Dogger Bank"}
    assert updated.json()["feature_type"] is None and updated.json()["geometry"] == SQUARE
    moved = api.put(
        url(layer, f"/{feature['id']}"), json={"geometry": point(3, 55)}, headers=owner.headers
    )
    assert moved.json()["geometry"] == point(3, 55)
    assert moved.json()["properties"] == {"name": "Dogger Bank"}

    deleted = api.delete(url(layer, f"/{feature['id']}"), headers=owner.headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"status": "success", "message": "Feature deleted"}
    assert_error(api.get(url(layer, f"/{feature['id']}"), headers=owner.headers), 404)
    assert_error(api.delete(url(layer, f"/{feature['id']}"), headers=owner.headers), 404)


def test_bulk_import_and_pages(api: httpx.Client, owner: ClerkUser) -> None:
    layer = vector_layer(api, owner)
    features = [
        {"type": "Feature", "geometry": point(i, i / 2), "properties": {"i": i}} for i in range(25)
    ]
    body = {"type": "FeatureCollection", "features": features, "feature_type": "station"}
    answer = api.post(url(layer, "/bulk"), json=body, headers=owner.headers)
    assert answer.status_code == 201, answer.text
    result = answer.json()
    assert result["success"] is True and result["created_count"] == 25
    assert result["failed_count"] == 0 and result["errors"] == []
    page = api.get(url(layer, "?limit=10&offset=20"), headers=owner.headers).json()
    assert [f["properties"]["i"] for f in page] == [20, 21, 22, 23, 24]
    assert {f["feature_type"] for f in page} == {"station"}
    assert [f["id"] for f in page] == result["feature_ids"][20:]
    boxed = api.get(url(layer, "?bbox=4.5,0,10.5,90"), headers=owner.headers).json()
    assert sorted(f["properties"]["i"] for f in boxed) == [5, 6, 7, 8, 9, 10]
    # Also what /api/layers/{id}/features sees: one store.
    seen = api.get(f"/api/layers/{layer['id']}/features", headers=owner.headers).json()
    assert seen["numberMatched"] == 25


def test_list_answers_what_each_feature_answers(api: httpx.Client, owner: ClerkUser) -> None:
    """The list is written as JSON text (one SQL statement on PostgreSQL, one shapely batch
    on SQLite), each row exactly what the feature's own route (pydantic) answers: same
    keys in the same order, same values, timestamps as UTC ISO with `Z`."""
    layer = vector_layer(api, owner)
    bodies = [
        {"geometry": SQUARE, "properties": {"name": "Dogger", "deep": {"a": [1, None, "x"]}}},
        {"geometry": point(3.123456789, -54.5), "properties": {}, "feature_type": 'st"ation'},
        {
            "geometry": {
                "type": "MultiLineString",
                "coordinates": [[[1, 2], [3.25, 4.5]], [[-5, -6], [7, 8]]],
            },
            "properties": {"emoji": "åäö 🌊", "n": 1.5, "ok": True},
            "feature_type": "line",
        },
    ]
    for body in bodies:
        created(api, owner, url(layer), body)
    answer = api.get(url(layer), headers=owner.headers)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    listed = answer.json()
    assert len(listed) == 3
    for row in listed:
        one = api.get(url(layer, f"/{row['id']}"), headers=owner.headers).json()
        assert list(row) == list(one) and row == one
        assert row["created_at"].endswith("Z") and row["updated_at"].endswith("Z")
    assert api.get(url(layer, "?offset=5"), headers=owner.headers).json() == []


def test_who_may_read_and_write(
    api: httpx.Client,
    owner: ClerkUser,
    stranger: ClerkUser,
    admin: ClerkUser,
    make_user: Callable[..., ClerkUser],
) -> None:
    private = vector_layer(api, owner)
    public = vector_layer(api, owner, permission="public")
    open_ = vector_layer(api, owner, permission="public", editable="everyone")
    body = {"geometry": point(1, 1)}
    for layer in (private, public, open_):
        created(api, owner, url(layer), body)
    # A private layer is unknown to others (read and write), the anonymous need to sign in.
    assert_error(api.get(url(private), headers=stranger.headers), 404)
    assert_error(api.get(url(private)), 404)
    assert_error(api.post(url(private), json=body, headers=stranger.headers), 404)
    assert_error(api.post(url(private), json=body), 401)
    # A public map's layer is read by all, written by its creator only...
    assert count(api, public, stranger) == 1
    assert api.get(url(public)).status_code == 200
    assert_error(api.post(url(public), json=body, headers=stranger.headers), 403)
    fid = api.get(url(public)).json()[0]["id"]
    assert_error(api.put(url(public, f"/{fid}"), json=body, headers=stranger.headers), 403)
    assert_error(api.delete(url(public, f"/{fid}"), headers=stranger.headers), 403)
    assert_error(api.delete(url(public, f"/{fid}")), 401)
    # ...unless it is editable by everyone (signed in).
    assert api.post(url(open_), json=body, headers=stranger.headers).status_code == 201
    assert_error(api.post(url(open_), json=body), 401)
    # An administrator may do anything.
    assert count(api, private, admin) == 1
    assert api.post(url(private), json=body, headers=admin.headers).status_code == 201
    fid = api.get(url(private), headers=admin.headers).json()[0]["id"]
    assert api.delete(url(private, f"/{fid}"), headers=admin.headers).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}},
        {"geometry": {"type": "Point", "coordinates": [500, 0]}},
        {"geometry": {"type": "Point"}},
        {"geometry": {"type": "Circle", "coordinates": [0, 0]}},
        {"geometry": point(0, 0), "feature_type": "x" * 101},
        {"geometry": point(0, 0), "properties": ["not", "an", "object"]},
        {"geometry": point(0, 0), "surprise": True},
        {"properties": {}},
        {},
    ],
)
def test_bad_features_are_422_and_write_nothing(
    api: httpx.Client, owner: ClerkUser, body: dict[str, Any]
) -> None:
    layer = vector_layer(api, owner)
    answer = api.post(url(layer), json=body, headers=owner.headers)
    assert_error(answer, 422)
    if set(body) <= {"geometry", "properties"}:  # the same, as the second of a collection
        good = {"type": "Feature", "geometry": point(1, 1), "properties": {}}
        bulk = {"type": "FeatureCollection", "features": [good, {"type": "Feature", **body}]}
        assert_error(api.post(url(layer, "/bulk"), json=bulk, headers=owner.headers), 422)
    else:  # a collection's own fields
        bulk = {"features": [{"type": "Feature", "geometry": point(1, 1)}]} | body
        bulk.pop("geometry", None)
        assert_error(api.post(url(layer, "/bulk"), json=bulk, headers=owner.headers), 422)
    assert count(api, layer, owner) == 0


def test_ugly_requests(api: httpx.Client, owner: ClerkUser, stranger: ClerkUser) -> None:
    layer = vector_layer(api, owner)
    other = vector_layer(api, stranger)
    theirs = created(api, stranger, url(other), {"geometry": point(0, 0)})
    # Another layer's feature id, through my layer: not found, and untouched.
    for answer in (
        api.get(url(layer, f"/{theirs['id']}"), headers=owner.headers),
        api.put(url(layer, f"/{theirs['id']}"), json={"properties": {}}, headers=owner.headers),
        api.delete(url(layer, f"/{theirs['id']}"), headers=owner.headers),
    ):
        assert_error(answer, 404)
    assert count(api, other, stranger) == 1
    assert_error(api.get("/api/v1/layers/not-a-uuid/features", headers=owner.headers), 422)
    assert_error(api.get(url(layer, "?bbox=1,2,3"), headers=owner.headers), 422)
    assert_error(api.get(url(layer, "?limit=1001"), headers=owner.headers), 422)
    mine = created(api, owner, url(layer), {"geometry": point(0, 0)})
    assert_error(api.put(url(layer, f"/{mine['id']}"), json={}, headers=owner.headers), 422)
    nulled = {"geometry": None}
    assert_error(api.put(url(layer, f"/{mine['id']}"), json=nulled, headers=owner.headers), 422)
    assert_error(api.post(url(layer, "/bulk"), json={"features": []}, headers=owner.headers), 422)
    huge = {"geometry": {"type": "LineString", "coordinates": [[0, 0]] * 2_000_001}}
    assert api.post(url(layer), json=huge, headers=owner.headers).status_code in (413, 422)
    deep = '{"geometry": {"type": "Point", "coordinates": ' + "[" * 5000 + "0" + "]" * 5000 + "}}"
    headers = owner.headers | {"Content-Type": "application/json"}
    answer = api.post(url(layer), content=deep.encode(), headers=headers)
    assert answer.status_code in (400, 413, 422), answer.text
    assert count(api, layer, owner) == 1


def test_writes_refresh_the_layers_tiles(api: httpx.Client, owner: ClerkUser) -> None:
    layer = vector_layer(api, owner, permission="public")
    tile = f"/api/layers/{layer['id']}/tiles/0/0/0"
    before = api.get(tile)
    assert before.status_code in (200, 204), before.text
    created(api, owner, url(layer), {"geometry": SQUARE})
    after = api.get(tile)
    assert after.status_code == 200 and len(after.content) > len(before.content)
