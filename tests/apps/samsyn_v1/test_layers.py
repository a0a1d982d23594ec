"""`/api/v1/layers`: SamSyn's layer shape, library filters, drawn features, permissions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.apps.samsyn_v1.conftest import ClerkUser, signed_in
from tests.apps.samsyn_v1.test_map_layers import new_layer
from tests.apps.samsyn_v1.test_maps import as_admin, new_map, share


def drawn(*points: tuple[float, float]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(p)},
             "properties": {"n": i}}
            for i, p in enumerate(points)
        ],
    }  # fmt: skip


def features_of(api: httpx.Client, user: ClerkUser, layer_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"/api/layers/{layer_id}/features", headers=user.headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["features"]
    return found


def test_create_answers_samsyn_layer_shape_with_drawn_features(
    api: httpx.Client, owner: ClerkUser
) -> None:
    me = signed_in(api, owner)
    collection = drawn((18.0, 59.0), (19.0, 60.0))
    layer = new_layer(
        api, owner, name="Buoys", category="Energy", creation_source="layer_creator",
        visibility="private", layer_metadata={"author": "Olive"}, style_config={"color": "#f00"},
        source_config={"geometryType": "Polygon", "featureCount": 99, "geojson": collection},
    )  # fmt: skip
    assert layer["created_by"] == me["id"] and layer["creator"]["email"] == owner.email
    assert layer["visibility"] == "private" and layer["creation_source"] == "layer_creator"
    assert layer["layer_metadata"] == {"author": "Olive"} and layer["editable"] == "creator-only"
    assert layer["style_config"] == {"color": "#f00"} and layer["legend_config"] == {}
    config = layer["source_config"]
    # The drawing stays where the frontend reads it; the statistics are the server's.
    assert config["geojson"] == collection
    assert config["featureCount"] == 2 and config["geometryType"] == "Point"
    assert config["bounds"] == [[18.0, 59.0], [19.0, 60.0]]
    assert sorted(f["geometry_type"] for f in layer["features"]) == ["Point", "Point"]
    assert [f["properties"] for f in layer["features"]] == [{"n": 0}, {"n": 1}]
    # The feature table has them too (bbox queries, tiles).
    assert len(features_of(api, owner, layer["id"])) == 2


def test_update_replaces_drawn_features_in_one_go(api: httpx.Client, owner: ClerkUser) -> None:
    layer = new_layer(api, owner, source_config={"geojson": drawn((1, 1), (2, 2))})
    url = f"/api/v1/layers/{layer['id']}"
    revision = layer["source_config"]["revision"]
    answer = api.put(url, json={"source_config": {"geojson": drawn((5, 5))}}, headers=owner.headers)
    assert answer.status_code == 200, answer.text
    config = answer.json()["source_config"]
    assert config["featureCount"] == 1 and config["revision"] > revision
    assert [f["geometry"]["coordinates"] for f in features_of(api, owner, layer["id"])] == [[5, 5]]
    # Invalid GeoJSON: a 422 naming the feature, and the old features stay.
    broken = drawn((7, 7))
    broken["features"][0]["geometry"]["coordinates"] = ["x"]
    answer = api.put(url, json={"source_config": {"geojson": broken}}, headers=owner.headers)
    assert answer.status_code == 422 and "features[0]" in answer.json()["message"]
    not_a_collection = {"source_config": {"geojson": {"type": "Point"}}}
    assert api.put(url, json=not_a_collection, headers=owner.headers).status_code == 422
    assert len(features_of(api, owner, layer["id"])) == 1
    # Every feature deleted in the editor.
    empty = {"type": "FeatureCollection", "features": []}
    answer = api.put(url, json={"source_config": {"geojson": empty}}, headers=owner.headers)
    assert answer.status_code == 200 and answer.json()["source_config"]["featureCount"] == 0
    assert features_of(api, owner, layer["id"]) == []


def test_list_filters(api: httpx.Client, owner: ClerkUser, stranger: ClerkUser) -> None:
    tag = uuid.uuid4().hex[:8]
    mine = new_layer(
        api, owner, name=f"{tag} mine", creation_source="layer_creator", category="Fish"
    )
    public = new_layer(api, stranger, name=f"{tag} public", visibility="public", description="cod")
    hidden = new_layer(api, stranger, name=f"{tag} hidden")
    system = new_layer(api, owner, name=f"{tag} system")

    def names(user: ClerkUser | None, **params: Any) -> list[str]:
        headers = user.headers if user else {}
        answer = api.get("/api/v1/layers", params={"search": tag, **params}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert isinstance(answer.json(), list)
        return [layer["name"] for layer in answer.json()]

    assert set(names(owner)) == {mine["name"], public["name"], system["name"]}
    assert hidden["name"] not in names(owner) and hidden["name"] in names(stranger)
    assert names(None) == [public["name"]]
    # Newest first.
    assert names(owner) == [system["name"], public["name"], mine["name"]]
    assert names(owner, include_my_layers="true") == [mine["name"]]
    assert names(owner, category="fish") == [mine["name"]]
    assert names(owner, source_type="wms") == []
    assert names(owner, is_global="true") == []
    assert api.get("/api/v1/layers", params={"search": f"{tag} cod"}).json() == []
    assert names(None, search=f"{tag} public") == [public["name"]]
    for params in ({"source_type": "shapefile"}, {"search": "x" * 201}, {"limit": 0}):
        assert api.get("/api/v1/layers", params=params).status_code == 422, params


def test_read_rules(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser, make_user: Callable[..., ClerkUser]
) -> None:
    private = new_layer(api, owner)
    public = new_layer(api, owner, visibility="public")
    assert api.get(f"/api/v1/layers/{private['id']}", headers=stranger.headers).status_code == 404
    assert api.get(f"/api/v1/layers/{private['id']}").status_code == 404
    assert api.get(f"/api/v1/layers/{public['id']}").status_code == 200
    # A layer on a map the caller reads is readable.
    viewer = make_user()
    map_ = new_map(api, owner)
    api.post(f"/api/v1/maps/{map_['id']}/layers", json={"layer_id": private["id"]},
             headers=owner.headers).raise_for_status()  # fmt: skip
    share(api, map_["id"], owner, viewer, "viewer")
    assert api.get(f"/api/v1/layers/{private['id']}", headers=viewer.headers).status_code == 200
    assert api.get(f"/api/v1/layers/{uuid.uuid4()}").status_code == 404


def test_update_and_delete_permissions(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser,
    make_user: Callable[..., ClerkUser],
) -> None:  # fmt: skip
    editor, viewer = make_user(), make_user()
    shared = new_layer(api, owner, editable="everyone", visibility="public")
    own = new_layer(api, owner, visibility="public")
    map_ = new_map(api, owner, edit_permission="collaborators")
    for layer in (shared, own):
        api.post(f"/api/v1/maps/{map_['id']}/layers", json={"layer_id": layer["id"]},
                 headers=owner.headers).raise_for_status()  # fmt: skip
    share(api, map_["id"], owner, editor, "editor")
    share(api, map_["id"], owner, viewer, "viewer")
    url = f"/api/v1/layers/{shared['id']}"
    # `everyone`: the editors of a map that shows it, not its viewers or strangers.
    assert api.put(url, json={"name": "By editor"}, headers=editor.headers).status_code == 200
    assert api.put(url, json={"name": "x"}, headers=viewer.headers).status_code == 403
    assert api.put(url, json={"name": "x"}, headers=stranger.headers).status_code == 403
    assert api.put(url, json={"name": "x"}).status_code == 401
    own_url = f"/api/v1/layers/{own['id']}"
    assert api.put(own_url, json={"name": "x"}, headers=editor.headers).status_code == 403
    # Only administrators make a layer global.
    denied = api.put(own_url, json={"is_global": True}, headers=owner.headers)
    assert denied.status_code == 403 and denied.json()["message"]
    assert api.put(own_url, json={"is_global": False}, headers=owner.headers).status_code == 200
    refused = {"name": "G", "source_type": "vector", "source_config": {}, "is_global": True}
    assert api.post("/api/v1/layers", json=refused, headers=owner.headers).status_code == 403
    # Delete: the creator only.
    assert api.delete(url, headers=editor.headers).status_code == 403
    assert api.delete(url, headers=stranger.headers).status_code == 403
    assert api.delete(url).status_code == 401
    answer = api.delete(url, headers=owner.headers)
    assert answer.status_code == 200 and answer.json() == {
        "status": "success", "message": "Layer deleted"
    }  # fmt: skip
    assert api.get(url, headers=owner.headers).status_code == 404
    shown = api.get(f"/api/v1/maps/{map_['id']}", headers=owner.headers).json()["map_layers"]
    assert [m["layer_id"] for m in shown] == [own["id"]]


def test_admin_makes_global_layers(api: httpx.Client, admin: ClerkUser) -> None:
    if not as_admin(api, admin):
        pytest.skip("unreachable")
    layer = new_layer(api, admin, is_global=True, creation_source="admin_panel")
    assert layer["is_global"] is True
    assert api.get(f"/api/v1/layers/{layer['id']}").status_code == 200


def test_bad_input(api: httpx.Client, owner: ClerkUser) -> None:
    for body in (
        {"name": "x", "source_type": "vector"},
        {"name": "", "source_type": "vector", "source_config": {}},
        {"name": "x", "source_type": "kml", "source_config": {}},
        {"name": "x", "source_type": "vector", "source_config": {}, "visibility": "friends"},
        {"name": "x", "source_type": "vector", "source_config": {}, "creation_source": "x"},
        {"name": "x", "source_type": "wms", "source_config": {"url": "ftp://x", "layers": "a"}},
        {"name": "x", "source_type": "vector", "source_config": {"geojson": "nope"}},
        {"name": "x", "source_type": "vector", "category": "c" * 101, "source_config": {}},
    ):
        answer = api.post("/api/v1/layers", json=body, headers=owner.headers)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["message"]
    layer = new_layer(api, owner)
    answer = api.put(
        f"/api/v1/layers/{layer['id']}", json={"source_type": "wms"}, headers=owner.headers
    )
    assert answer.status_code == 422


def test_wms_url_to_loopback_is_refused(api: httpx.Client, owner: ClerkUser) -> None:
    for url in ("http://127.0.0.1:1/wms", "http://169.254.169.254/latest/meta-data"):
        body = {"name": "x", "source_type": "wms", "source_config": {"url": url, "layers": "a"}}
        answer = api.post("/api/v1/layers", json=body, headers=owner.headers)
        assert answer.status_code in (403, 422), answer.text


def test_writes_reach_tiles_and_the_maps_event_socket(
    api: httpx.Client, owner: ClerkUser, v1_server: Any
) -> None:
    layer = new_layer(api, owner, source_config={"geojson": drawn((18.0, 59.0))})
    tile = f"/api/layers/{layer['id']}/tiles/0/0/0"
    assert api.get(tile, headers=owner.headers).status_code == 200
    map_ = new_map(api, owner)
    url = f"/api/v1/maps/{map_['id']}/layers"
    api.post(url, json={"layer_id": layer["id"]}, headers=owner.headers).raise_for_status()
    ws_url = v1_server.base_url.replace("http", "ws", 1)
    socket = f"{ws_url}/api/maps/{map_['id']}/events?token={owner.token()}"

    async def listen() -> list[str]:
        async with websockets.connect(socket) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "subscribed"
            empty = {"source_config": {"geojson": {"type": "FeatureCollection", "features": []}}}
            await asyncio.to_thread(
                api.put, f"/api/v1/layers/{layer['id']}", json=empty, headers=owner.headers
            )
            await asyncio.to_thread(
                api.put, f"{url}/{layer['id']}", json={"opacity": 30}, headers=owner.headers
            )
            return [json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] for _ in range(2)]

    assert asyncio.run(listen()) == ["layer.updated", "map_layer.updated"]
    # The old tile is gone: the layer has no features now.
    assert api.get(tile, headers=owner.headers).status_code == 204
