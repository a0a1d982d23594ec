"""`/api/v1/maps`: SamSyn's map shape, its roles and permissions, its status codes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.apps.samsyn_v1.conftest import ClerkUser, signed_in


def new_map(api: httpx.Client, user: ClerkUser, **body: Any) -> dict[str, Any]:
    answer = api.post("/api/v1/maps", json={"name": "Baltic plan", **body}, headers=user.headers)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def as_admin(api: httpx.Client, admin: ClerkUser) -> bool:
    """Sign in the Clerk user whose `public_metadata.isAdmin` makes them an administrator."""
    assert signed_in(api, admin)["is_admin"]
    return True


def share(api: httpx.Client, map_id: str, owner: ClerkUser, who: ClerkUser, role: str) -> None:
    signed_in(api, who)
    answer = api.post(
        f"/api/v1/maps/{map_id}/collaborators",
        json={"email": who.email, "role": role},
        headers=owner.headers,
    )
    assert answer.status_code == 201, answer.text


def test_create_answers_samsyn_map_shape(api: httpx.Client, owner: ClerkUser) -> None:
    me = signed_in(api, owner)
    body = new_map(
        api, owner, description="2030", center_lat=58.5, center_lng=19, zoom=6,
        map_metadata={"scenario": "A"},
    )  # fmt: skip
    assert body["view_permission"] == "private" and body["edit_permission"] == "private"
    assert body["map_metadata"] == {"scenario": "A"}
    assert body["user_role"] == "owner"
    assert body["created_by"] == me["id"]
    assert body["creator"]["email"] == owner.email and body["creator"]["first_name"] == "Olive"
    assert body["collaborators"] == [] and body["map_layers"] == []
    assert (body["center_lat"], body["center_lng"], body["zoom"]) == (58.5, 19, 6)
    # The seed's API sees the same map, its permission as `permission_level`.
    seed = api.get(f"/api/maps/{body['id']}", headers=owner.headers).json()
    assert seed["permission_level"] == "private" and seed["role"] == "owner"


def test_list_is_a_plain_array_of_own_shared_and_public_maps(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser
) -> None:
    private = new_map(api, owner)
    public = new_map(api, owner, view_permission="public")
    shared = new_map(api, owner)
    share(api, shared["id"], owner, stranger, "viewer")
    mine = {m["id"]: m for m in api.get("/api/v1/maps", headers=owner.headers).json()}
    assert {private["id"], public["id"], shared["id"]} <= set(mine)
    theirs = {m["id"]: m for m in api.get("/api/v1/maps", headers=stranger.headers).json()}
    assert private["id"] not in theirs
    assert theirs[public["id"]]["user_role"] == "viewer"
    assert theirs[shared["id"]]["user_role"] == "viewer"
    anonymous = api.get("/api/v1/maps")
    assert anonymous.status_code == 200 and isinstance(anonymous.json(), list)
    ids = {m["id"] for m in anonymous.json()}
    assert public["id"] in ids and private["id"] not in ids and shared["id"] not in ids
    # The public sees no collaborator's e-mail.
    assert all(m["collaborators"] == [] for m in anonymous.json())


def test_get_as_owner_viewer_stranger_anonymous_admin(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser, admin: ClerkUser,
    make_user: Callable[..., ClerkUser],
) -> None:  # fmt: skip
    viewer = make_user()
    map_ = new_map(api, owner)
    share(api, map_["id"], owner, viewer, "viewer")
    url = f"/api/v1/maps/{map_['id']}"
    assert api.get(url, headers=owner.headers).json()["user_role"] == "owner"
    seen = api.get(url, headers=viewer.headers).json()
    assert seen["user_role"] == "viewer"
    # Sharing a private map made it a `collaborators` map.
    assert seen["view_permission"] == "collaborators"
    assert seen["collaborators"][0]["user"]["email"] == viewer.email
    assert seen["collaborators"][0]["role"] == "viewer"
    assert api.get(url, headers=stranger.headers).status_code == 404
    missing = api.get(url)
    assert missing.status_code == 404 and missing.json()["message"]
    assert api.get(f"/api/v1/maps/{uuid.uuid4()}", headers=owner.headers).status_code == 404
    assert api.get("/api/v1/maps/not-a-uuid", headers=owner.headers).status_code == 422
    if as_admin(api, admin):
        assert api.get(url, headers=admin.headers).json()["user_role"] == "owner"


def test_update_by_owner_and_editor_not_viewer_stranger_anonymous(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser,
    make_user: Callable[..., ClerkUser],
) -> None:  # fmt: skip
    editor, viewer = make_user(), make_user()
    map_ = new_map(api, owner, view_permission="collaborators", edit_permission="collaborators")
    share(api, map_["id"], owner, editor, "editor")
    share(api, map_["id"], owner, viewer, "viewer")
    url = f"/api/v1/maps/{map_['id']}"
    answer = api.put(url, json={"name": "Renamed", "map_metadata": {"v": 2}}, headers=owner.headers)
    assert answer.status_code == 200 and answer.json()["name"] == "Renamed"
    assert answer.json()["map_metadata"] == {"v": 2}
    answer = api.put(url, json={"zoom": 9, "view_permission": "public"}, headers=editor.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["user_role"] == "editor" and answer.json()["view_permission"] == "public"
    forbidden = api.put(url, json={"name": "x"}, headers=viewer.headers)
    assert forbidden.status_code == 403 and forbidden.json()["status"] == "error"
    # A public map: a stranger reads it but cannot edit it.
    assert api.put(url, json={"name": "x"}, headers=stranger.headers).status_code == 403
    assert api.put(url, json={"name": "x"}).status_code == 401
    # Nothing of the refused writes stuck.
    assert api.get(url).json()["name"] == "Renamed"


def test_edit_permission_decides_who_edits(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser,
    make_user: Callable[..., ClerkUser],
) -> None:  # fmt: skip
    editor = make_user()
    map_ = new_map(api, owner, view_permission="public", edit_permission="private")
    share(api, map_["id"], owner, editor, "editor")
    url = f"/api/v1/maps/{map_['id']}"
    # `private`: the owner alone edits, an editor collaborator included; the collaborator's
    # role is still "editor" (SamSyn's `user_role` names the role, not the right).
    assert api.put(url, json={"zoom": 3}, headers=editor.headers).status_code == 403
    assert api.get(url, headers=editor.headers).json()["user_role"] == "editor"
    assert (
        api.put(url, json={"edit_permission": "public"}, headers=owner.headers).status_code == 200
    )
    # `public`: every signed-in reader edits; anonymous callers still do not.
    assert api.put(url, json={"zoom": 4}, headers=stranger.headers).status_code == 200
    assert api.put(url, json={"zoom": 5}).status_code == 401
    # The seed's API follows the same rule (one service).
    seed = api.put(
        f"/api/maps/{map_['id']}/layers/reorder", json={"layer_ids": []}, headers=stranger.headers
    )
    assert seed.status_code == 200, seed.text


def test_delete_owner_only(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser, make_user: Callable[..., ClerkUser]
) -> None:
    editor = make_user()
    map_ = new_map(api, owner, edit_permission="collaborators")
    share(api, map_["id"], owner, editor, "editor")
    url = f"/api/v1/maps/{map_['id']}"
    assert api.delete(url, headers=editor.headers).status_code == 403
    assert api.delete(url, headers=stranger.headers).status_code == 404
    assert api.delete(url).status_code == 401
    answer = api.delete(url, headers=owner.headers)
    assert answer.status_code == 200
    assert answer.json() == {"status": "success", "message": "Map deleted"}
    assert api.get(url, headers=owner.headers).status_code == 404


def test_bad_input_is_a_clear_422_and_writes_nothing(api: httpx.Client, owner: ClerkUser) -> None:
    before = len(api.get("/api/v1/maps", headers=owner.headers).json())
    for body in (
        {},
        {"name": ""},
        {"name": "x" * 256},
        {"name": "x", "center_lat": 91},
        {"name": "x", "zoom": 23},
        {"name": "x", "view_permission": "secret"},
        {"name": "x", "edit_permission": "everyone"},
        {"name": "x", "map_metadata": [1, 2]},
    ):
        answer = api.post("/api/v1/maps", json=body, headers=owner.headers)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["status"] == "error" and answer.json()["message"]
    assert len(api.get("/api/v1/maps", headers=owner.headers).json()) == before
    map_ = new_map(api, owner)
    answer = api.put(f"/api/v1/maps/{map_['id']}", json={"zoom": -1}, headers=owner.headers)
    assert answer.status_code == 422
    # An explicit null keeps what the map had.
    kept = api.put(f"/api/v1/maps/{map_['id']}", json={"name": None}, headers=owner.headers)
    assert kept.status_code == 200 and kept.json()["name"] == "Baltic plan"
