"""`/api/v1/maps/{id}/layers`: add, update (opacity 0-100), reorder, remove."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.apps.samsyn_v1.conftest import ClerkUser
from tests.apps.samsyn_v1.test_maps import new_map, share


def new_layer(api: httpx.Client, user: ClerkUser, **body: Any) -> dict[str, Any]:
    payload = {"name": "Wind farms", "source_type": "vector", "source_config": {}, **body}
    answer = api.post("/api/v1/layers", json=payload, headers=user.headers)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def layers_url(map_id: str) -> str:
    return f"/api/v1/maps/{map_id}/layers"


def test_add_update_reorder_remove(api: httpx.Client, owner: ClerkUser) -> None:
    map_ = new_map(api, owner)
    first, second = new_layer(api, owner, name="A"), new_layer(api, owner, name="B")
    url = layers_url(map_["id"])
    added = api.post(url, json={"layer_id": first["id"], "opacity": 40}, headers=owner.headers)
    assert added.status_code == 201, added.text
    row = added.json()
    assert row["layer_id"] == first["id"] and row["opacity"] == 40 and row["visible"] is True
    assert row["order"] == 0 and row["id"] and row["created_at"]
    api.post(url, json={"layer_id": second["id"]}, headers=owner.headers).raise_for_status()
    # The seed's API stores opacity 0.0-1.0.
    seed = api.get(f"/api/maps/{map_['id']}", headers=owner.headers).json()
    assert seed["layers"][0]["opacity"] == 0.4
    changed = api.put(
        f"{url}/{first['id']}", json={"visible": False, "opacity": 75}, headers=owner.headers
    )
    assert changed.status_code == 200 and changed.json()["opacity"] == 75
    assert changed.json()["visible"] is False
    order = [{"layer_id": first["id"], "order": 1}, {"layer_id": second["id"], "order": 0}]
    reordered = api.put(f"{url}/reorder", json={"layer_orders": order}, headers=owner.headers)
    assert reordered.status_code == 200, reordered.text
    assert [r["layer_id"] for r in reordered.json()] == [second["id"], first["id"]]
    moved = api.put(f"{url}/{second['id']}", json={"order": 1}, headers=owner.headers)
    assert moved.status_code == 200 and moved.json()["order"] == 1
    shown = api.get(f"/api/v1/maps/{map_['id']}", headers=owner.headers).json()
    assert [m["layer"]["name"] for m in shown["map_layers"]] == ["A", "B"]
    assert shown["map_layers"][0]["layer"]["creator"]["email"] == owner.email
    removed = api.delete(f"{url}/{first['id']}", headers=owner.headers)
    assert removed.status_code == 200 and removed.json()["status"] == "success"
    left = api.get(f"/api/v1/maps/{map_['id']}", headers=owner.headers).json()["map_layers"]
    assert [m["layer_id"] for m in left] == [second["id"]]
    # The layer itself stays.
    assert api.get(f"/api/v1/layers/{first['id']}", headers=owner.headers).status_code == 200


def test_roles(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser,
    make_user: Callable[..., ClerkUser],
) -> None:  # fmt: skip
    editor, viewer = make_user(), make_user()
    map_ = new_map(api, owner, view_permission="public", edit_permission="collaborators")
    share(api, map_["id"], owner, editor, "editor")
    share(api, map_["id"], owner, viewer, "viewer")
    layer = new_layer(api, owner, visibility="public")
    url = layers_url(map_["id"])
    body = {"layer_id": layer["id"]}
    assert api.post(url, json=body, headers=viewer.headers).status_code == 403
    assert api.post(url, json=body, headers=stranger.headers).status_code == 403
    assert api.post(url, json=body).status_code == 401
    assert api.post(url, json=body, headers=editor.headers).status_code == 201
    for who, code in ((viewer, 403), (stranger, 403), (None, 401), (editor, 200)):
        headers = who.headers if who else {}
        answer = api.put(f"{url}/{layer['id']}", json={"opacity": 10}, headers=headers)
        assert answer.status_code == code, (who, answer.text)
    assert api.delete(f"{url}/{layer['id']}", headers=viewer.headers).status_code == 403
    assert api.delete(f"{url}/{layer['id']}", headers=editor.headers).status_code == 200


def test_ugly_cases(api: httpx.Client, owner: ClerkUser, stranger: ClerkUser) -> None:
    map_ = new_map(api, owner)
    layer = new_layer(api, owner)
    url = layers_url(map_["id"])
    api.post(url, json={"layer_id": layer["id"]}, headers=owner.headers).raise_for_status()
    twice = api.post(url, json={"layer_id": layer["id"]}, headers=owner.headers)
    assert twice.status_code == 400 and twice.json()["message"]
    # Someone else's private layer is not there to add.
    theirs = new_layer(api, stranger)
    assert api.post(url, json={"layer_id": theirs["id"]}, headers=owner.headers).status_code == 404
    assert (
        api.post(url, json={"layer_id": str(uuid.uuid4())}, headers=owner.headers).status_code
        == 404
    )
    for body in (
        {"layer_id": layer["id"], "opacity": 101},
        {"layer_id": layer["id"], "opacity": -1},
        {"layer_id": layer["id"], "order": -1},
        {"layer_id": "nope"},
    ):
        assert api.post(url, json=body, headers=owner.headers).status_code == 422, body
    assert (
        api.put(f"{url}/{theirs['id']}", json={"opacity": 5}, headers=owner.headers).status_code
        == 404
    )
    assert api.delete(f"{url}/{theirs['id']}", headers=owner.headers).status_code == 404
    # A reorder naming a layer that is not on the map, or leaving one out, changes nothing.
    foreign = [{"layer_id": theirs["id"], "order": 0}]
    assert (
        api.put(f"{url}/reorder", json={"layer_orders": foreign}, headers=owner.headers).status_code
        == 422
    )
    assert (
        api.put(f"{url}/reorder", json={"layer_orders": []}, headers=owner.headers).status_code
        == 422
    )
    bad = [{"layer_id": layer["id"], "order": -2}]
    assert (
        api.put(f"{url}/reorder", json={"layer_orders": bad}, headers=owner.headers).status_code
        == 422
    )
    shown = api.get(f"/api/v1/maps/{map_['id']}", headers=owner.headers).json()["map_layers"]
    assert [m["layer_id"] for m in shown] == [layer["id"]]


def test_order_is_stored_as_given(api: httpx.Client, owner: ClerkUser) -> None:
    map_ = new_map(api, owner)
    a, b, c = (new_layer(api, owner, name=n) for n in "ABC")
    url = layers_url(map_["id"])

    def add(layer: dict[str, Any], **body: Any) -> dict[str, Any]:
        answer = api.post(url, json={"layer_id": layer["id"], **body}, headers=owner.headers)
        assert answer.status_code == 201, answer.text
        row: dict[str, Any] = answer.json()
        return row

    def names() -> list[tuple[str, int]]:
        shown = api.get(f"/api/v1/maps/{map_['id']}", headers=owner.headers).json()
        return [(m["layer"]["name"], m["order"]) for m in shown["map_layers"]]

    assert add(a, order=10)["order"] == 10
    assert add(b)["order"] == 11  # no order: after the last
    assert add(c, order=10)["order"] == 10  # a tie: the earlier added first
    assert names() == [("A", 10), ("C", 10), ("B", 11)]
    moved = api.put(f"{url}/{a['id']}", json={"order": 50}, headers=owner.headers)
    assert moved.status_code == 200 and moved.json()["order"] == 50
    assert names() == [("C", 10), ("B", 11), ("A", 50)]
    orders = [{"layer_id": x["id"], "order": o} for x, o in ((a, 5), (b, 7), (c, 9))]
    reordered = api.put(f"{url}/reorder", json={"layer_orders": orders}, headers=owner.headers)
    assert reordered.status_code == 200, reordered.text
    assert [(r["layer_id"], r["order"]) for r in reordered.json()] == [
        (a["id"], 5), (b["id"], 7), (c["id"], 9)
    ]  # fmt: skip
    # Removing one leaves the others' orders alone.
    assert api.delete(f"{url}/{b['id']}", headers=owner.headers).status_code == 200
    assert names() == [("A", 5), ("C", 9)]
    # The seed's API still numbers 0..n-1 when it reorders.
    seed = api.put(
        f"/api/maps/{map_['id']}/layers/reorder",
        json={"layer_ids": [c["id"], a["id"]]},
        headers=owner.headers,
    )
    assert seed.status_code == 200, seed.text
    assert names() == [("C", 0), ("A", 1)]


def test_editors_add_the_owners_layers_not_strangers(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser,
    make_user: Callable[..., ClerkUser],
) -> None:  # fmt: skip
    editor = make_user()
    map_ = new_map(api, owner, view_permission="collaborators", edit_permission="collaborators")
    share(api, map_["id"], owner, editor, "editor")
    owners = new_layer(api, owner, name="Owner's private layer")
    theirs = new_layer(api, stranger, name="Stranger's private layer")
    url = layers_url(map_["id"])
    # The owner's private layer: the editor may put it on the owner's map (and then reads it).
    added = api.post(url, json={"layer_id": owners["id"]}, headers=editor.headers)
    assert added.status_code == 201, added.text
    assert api.get(f"/api/v1/layers/{owners['id']}", headers=editor.headers).status_code == 200
    # A stranger's private layer stays unknown to the editor.
    refused = api.post(url, json={"layer_id": theirs["id"]}, headers=editor.headers)
    assert refused.status_code == 404
    # A viewer adds nothing, the owner's layers neither.
    viewer = make_user()
    share(api, map_["id"], owner, viewer, "viewer")
    other = new_layer(api, owner, name="Another")
    assert api.post(url, json={"layer_id": other["id"]}, headers=viewer.headers).status_code == 403
