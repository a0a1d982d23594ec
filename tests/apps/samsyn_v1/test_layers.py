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
    assert config["bounds"] == [18.0, 59.0, 19.0, 60.0]  # SamSyn: flat
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
    # `everyone` (public here): every signed-in user who reads it, map member or not.
    assert api.put(url, json={"name": "By editor"}, headers=editor.headers).status_code == 200
    assert api.put(url, json={"name": "By viewer"}, headers=viewer.headers).status_code == 200
    assert api.put(url, json={"name": "By anyone"}, headers=stranger.headers).status_code == 200
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
    assert api.get(url, headers=owner.headers).json()["name"] == "By anyone"
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


def test_everyone_layers_are_edited_by_their_readers_only(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser, admin: ClerkUser
) -> None:
    private = new_layer(api, owner, editable="everyone")
    url = f"/api/v1/layers/{private['id']}"
    # A private `everyone` layer on no map: nobody else reads it, so nobody else edits it.
    assert api.put(url, json={"name": "x"}, headers=stranger.headers).status_code == 404
    # A global one is read, so edited, by every signed-in user; `is_global` stays the admins'.
    made = api.post(
        "/api/v1/layers",
        json={"name": "Community", "source_type": "vector", "source_config": {},
              "editable": "everyone", "is_global": True},
        headers=admin.headers,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    global_url = f"/api/v1/layers/{made.json()['id']}"
    edited = api.put(global_url, json={"description": "Mine too"}, headers=stranger.headers)
    assert edited.status_code == 200 and edited.json()["description"] == "Mine too"
    denied = api.put(global_url, json={"is_global": False}, headers=stranger.headers)
    assert denied.status_code == 403
    assert api.get(global_url, headers=stranger.headers).json()["is_global"] is True
    assert api.delete(global_url, headers=stranger.headers).status_code == 403


def test_loose_source_configs_are_saved_as_given(api: httpx.Client, owner: ClerkUser) -> None:
    def create(source_type: str, config: dict[str, Any], **body: Any) -> httpx.Response:
        payload = {"name": "Loose", "source_type": source_type, "source_config": config, **body}
        return api.post("/api/v1/layers", json=payload, headers=owner.headers)

    # A GeoTIFF without `delivery` is served as tiles.
    tif = create("geotiff", {"url": "https://example.org/data.tif"})
    assert tif.status_code == 201, tif.text
    assert tif.json()["source_config"] == {
        "delivery": "tiles",
        "url": "https://example.org/data.tif",
    }
    # A vector layer keeps the client's keys; the statistics come with its first features.
    vector = create("vector", {"type": "geojson", "url": "https://example.org/data.json"},
                    metadata={"author": "Ada"})  # fmt: skip
    assert vector.status_code == 201, vector.text
    assert vector.json()["source_config"] == {
        "type": "geojson",
        "url": "https://example.org/data.json",
    }
    assert vector.json()["layer_metadata"] == {"author": "Ada"}  # SamSyn's other name for it
    # What is given is still checked: types, URL schemes, the source policy.
    for source_type, config in (
        ("geotiff", {"delivery": "stream", "url": "https://example.org/a.tif"}),
        ("geotiff", {"url": "ftp://example.org/a.tif"}),
        ("geotiff", {}),
        ("wms", {"layers": "sea"}),
        ("wms", {"url": "https://example.org/wms", "layers": ""}),
        ("wms", {"url": "https://example.org/wms", "version": "2.0"}),
    ):
        answer = create(source_type, config)
        assert answer.status_code == 422, (config, answer.text)
        assert answer.json()["detail"][0]["loc"][0] == "source_config"
    refused = create("geotiff", {"url": "http://169.254.169.254/latest/meta-data"})
    assert refused.status_code == 403, refused.text


def test_the_admin_forms_spellings_round_trip(api: httpx.Client, owner: ClerkUser) -> None:
    # SamSyn's GeoTIFF form sends titiler's flat bounds and reads them back flat (MapLibre's
    # raster bounds); `/api` keeps its own [[west, south], [east, north]].
    config = {"delivery": "direct", "url": "https://example.org/rings.tif",
              "bounds": [2.0, 51.0, 8.0, 56.0], "processing": {"colormap": "viridis"}}  # fmt: skip
    body = {"name": "Rings", "source_type": "geotiff", "source_config": config}
    made = api.post("/api/v1/layers", json=body, headers=owner.headers)
    assert made.status_code == 201, made.text
    assert made.json()["source_config"]["bounds"] == [2.0, 51.0, 8.0, 56.0]
    again = api.get(f"/api/v1/layers/{made.json()['id']}", headers=owner.headers).json()
    assert again["source_config"]["bounds"] == [2.0, 51.0, 8.0, 56.0]
    seed = api.get(f"/api/layers/{made.json()['id']}", headers=owner.headers).json()
    assert seed["source_config"]["bounds"] == [[2.0, 51.0], [8.0, 56.0]]


def test_source_type_changes_when_the_config_suits(api: httpx.Client, owner: ClerkUser) -> None:
    tif = new_layer(
        api, owner, source_type="geotiff", source_config={"cogUrl": "https://example.org/a.tif"}
    )
    url = f"/api/v1/layers/{tif['id']}"
    # Its config is no WMS config (no `url`): 422 naming why, nothing changed.
    refused = api.put(url, json={"source_type": "wms"}, headers=owner.headers)
    assert refused.status_code == 422 and "wms" in refused.json()["message"], refused.text
    assert "source_config.url" in refused.json()["message"]
    assert api.get(url, headers=owner.headers).json()["source_type"] == "geotiff"
    # Any config is a vector config.
    changed = api.put(url, json={"source_type": "vector"}, headers=owner.headers)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["source_type"] == "vector" and body["source_config"]["featureCount"] == 0
    assert body["source_config"]["cogUrl"] == "https://example.org/a.tif"
    # With a new config that suits the new type, in the same request.
    back = api.put(
        url,
        json={"source_type": "geotiff", "source_config": {"cogUrl": "https://example.org/b.tif"}},
        headers=owner.headers,
    )
    assert back.status_code == 200, back.text
    assert back.json()["source_config"] == {
        "delivery": "tiles",
        "cogUrl": "https://example.org/b.tif",
    }
    # A vector layer with features keeps its type until they are deleted.
    drawn_layer = new_layer(api, owner, source_config={"geojson": drawn((1.0, 2.0))})
    kept = api.put(
        f"/api/v1/layers/{drawn_layer['id']}",
        json={"source_type": "geotiff", "source_config": {"url": "https://example.org/c.tif"}},
        headers=owner.headers,
    )
    assert kept.status_code == 422 and "features" in kept.json()["message"]
