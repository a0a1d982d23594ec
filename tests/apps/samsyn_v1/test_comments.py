"""`/api/v1/comments`: SamSyn's comment shapes over the samsyn comments service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.apps.samsyn_v1.conftest import ClerkUser, assert_error, created, signed_in

URL = "/api/v1/comments"


@dataclass
class Scene:
    """A `collaborators` map of the owner's, an editor and a viewer on it, a public map."""

    owner: ClerkUser
    editor: ClerkUser
    viewer: ClerkUser
    shared: dict[str, Any]
    public: dict[str, Any]


@pytest.fixture
def scene(api: httpx.Client, owner: ClerkUser, make_user: Callable[..., ClerkUser]) -> Scene:
    editor, viewer = make_user(name="Eddie Editor"), make_user(name="Vera Viewer")
    shared = created(api, owner, "/api/maps", {"name": "Team", "permission_level": "collaborators"})
    for who, permission in ((editor, "edit"), (viewer, "view")):
        user_id = signed_in(api, who)["id"]
        path = f"/api/maps/{shared['id']}/collaborators"
        created(api, owner, path, {"user_id": user_id, "permission": permission})
    public = created(api, owner, "/api/maps", {"name": "Open", "permission_level": "public"})
    return Scene(owner, editor, viewer, shared, public)


def comment(api: httpx.Client, user: ClerkUser, **body: Any) -> dict[str, Any]:
    return created(api, user, URL, {"content": "A thought"} | body)


def test_create_list_and_shape(api: httpx.Client, scene: Scene) -> None:
    root = comment(api, scene.owner, map_id=scene.shared["id"], content="  Extend north?  ")
    assert root["content"] == "Extend north?"  # trimmed, as SamSyn stores it
    assert root["author_name"] == "Olive Owner" and root["reply_count"] == 0
    assert (root["map_id"], root["layer_id"], root["parent_id"]) == (scene.shared["id"], None, None)
    assert set(root) == {
        "id", "content", "author_id", "map_id", "layer_id", "parent_id", "is_resolved",
        "created_at", "updated_at", "author_name", "reply_count",
    }  # fmt: skip
    reply = comment(api, scene.viewer, map_id=scene.shared["id"], parent_id=root["id"])
    assert reply["author_name"] == "Vera Viewer"
    listed = api.get(URL, params={"map_id": scene.shared["id"]}, headers=scene.editor.headers)
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()] == [reply["id"], root["id"]]  # newest first
    assert listed.json()[1]["reply_count"] == 1
    got = api.get(f"{URL}/{root['id']}", headers=scene.viewer.headers).json()
    assert got["reply_count"] == 1 and got["content"] == "Extend north?"
    replies = api.get(URL, params={"parent_id": root["id"]}, headers=scene.owner.headers).json()
    assert [c["id"] for c in replies] == [reply["id"]]
    paged = api.get(URL, params={"map_id": scene.shared["id"], "limit": 1, "offset": 1})
    assert paged.json() == []  # anonymous: a collaborators map is not theirs to read


def test_thread_nests_replies(api: httpx.Client, scene: Scene) -> None:
    map_id = scene.shared["id"]
    root = comment(api, scene.owner, map_id=map_id)
    first = comment(api, scene.editor, map_id=map_id, parent_id=root["id"], content="One")
    second = comment(api, scene.viewer, map_id=map_id, parent_id=root["id"], content="Two")
    deeper = comment(api, scene.owner, map_id=map_id, parent_id=first["id"], content="Deeper")
    thread = api.get(f"{URL}/{root['id']}/thread", headers=scene.viewer.headers).json()
    assert thread["reply_count"] == 2
    assert [r["id"] for r in thread["replies"]] == [first["id"], second["id"]]
    assert [r["id"] for r in thread["replies"][0]["replies"]] == [deeper["id"]]
    assert thread["replies"][0]["reply_count"] == 1
    shallow = api.get(
        f"{URL}/{root['id']}/thread", params={"max_depth": 1}, headers=scene.owner.headers
    ).json()
    assert len(shallow["replies"]) == 2 and shallow["replies"][0]["replies"] == []
    for depth in (0, 21, "x"):
        answer = api.get(f"{URL}/{root['id']}/thread", params={"max_depth": depth})
        assert_error(answer, 422)


def test_who_reads(api: httpx.Client, scene: Scene, stranger: ClerkUser, admin: ClerkUser) -> None:
    private = comment(api, scene.owner, map_id=scene.shared["id"], content="Members only")
    open_ = comment(api, scene.owner, map_id=scene.public["id"], content="For all")
    for user in (stranger, None):
        headers = user.headers if user else {}
        # Not theirs to read: unknown, and absent from every list.
        assert_error(api.get(f"{URL}/{private['id']}", headers=headers), 404)
        assert_error(api.get(f"{URL}/{private['id']}/thread", headers=headers), 404)
        mine = api.get(URL, params={"map_id": scene.shared["id"]}, headers=headers).json()
        assert mine == []
        everything = api.get(URL, params={"limit": 1000}, headers=headers).json()
        ids = {c["id"] for c in everything}
        assert private["id"] not in ids and open_["id"] in ids
        assert api.get(f"{URL}/{open_['id']}", headers=headers).status_code == 200
    everything = api.get(URL, params={"limit": 1000}, headers=admin.headers).json()
    assert {private["id"], open_["id"]} <= {c["id"] for c in everything}
    assert api.get(f"{URL}/{private['id']}", headers=admin.headers).status_code == 200


def test_who_writes(api: httpx.Client, scene: Scene, stranger: ClerkUser) -> None:
    body = {"content": "Hello", "map_id": scene.public["id"]}
    assert_error(api.post(URL, json=body), 401)
    # The public reads a public map but does not comment on it; members do.
    assert_error(api.post(URL, json=body, headers=stranger.headers), 403)
    # A map one cannot read is unknown.
    shared = {"content": "Hello", "map_id": scene.shared["id"]}
    assert_error(api.post(URL, json=shared, headers=stranger.headers), 404)
    assert api.post(URL, json=shared, headers=scene.viewer.headers).status_code == 201
    # A layer's comments: any signed-in reader of the layer.
    layer = created(api, scene.owner, "/api/layers", {"name": "L", "source_type": "vector"})
    created(api, scene.owner, f"/api/maps/{scene.public['id']}/layers", {"layer_id": layer["id"]})
    on_layer = comment(api, stranger, layer_id=layer["id"])
    assert on_layer["layer_id"] == layer["id"] and on_layer["map_id"] is None
    listed = api.get(URL, params={"layer_id": layer["id"]}).json()
    assert [c["id"] for c in listed] == [on_layer["id"]]


def test_edit_resolve_delete_rules(
    api: httpx.Client, scene: Scene, admin: ClerkUser, stranger: ClerkUser
) -> None:
    map_id = scene.shared["id"]
    mine = comment(api, scene.viewer, map_id=map_id)
    path = f"{URL}/{mine['id']}"
    # Content: the author only (not an admin, not the owner).
    for user in (scene.owner, scene.editor, admin):
        assert_error(api.put(path, json={"content": "Not yours"}, headers=user.headers), 403)
    assert_error(api.put(path, json={"content": "Not yours"}, headers=stranger.headers), 404)
    assert_error(api.put(path, json={"content": "Nope"}), 401)
    edited = api.put(path, json={"content": "Second thought"}, headers=scene.viewer.headers)
    assert edited.status_code == 200 and edited.json()["content"] == "Second thought"
    # Resolving: the author, an editor, an admin; not another viewer or a stranger.
    other = comment(api, scene.editor, map_id=map_id)
    assert_error(
        api.put(f"{URL}/{other['id']}/resolve?is_resolved=true", headers=scene.viewer.headers),
        403,
    )
    for user, state in ((scene.viewer, "true"), (scene.editor, "false"), (admin, "true")):
        answer = api.put(f"{path}/resolve", params={"is_resolved": state}, headers=user.headers)
        assert answer.status_code == 200 and answer.json()["is_resolved"] is (state == "true")
    assert_error(api.put(f"{path}/resolve", headers=scene.viewer.headers), 422)
    assert_error(api.put(f"{path}/resolve?is_resolved=true"), 401)
    unresolved = api.get(URL, params={"map_id": map_id, "include_resolved": "false"},
                         headers=scene.owner.headers).json()  # fmt: skip
    assert [c["id"] for c in unresolved] == [other["id"]]
    # Deleting: the author or the map's owner (with the replies); not another member.
    reply = comment(api, scene.editor, map_id=map_id, parent_id=mine["id"])
    assert_error(api.delete(path, headers=scene.editor.headers), 403)
    assert_error(api.delete(path), 401)
    answer = api.delete(path, headers=scene.owner.headers)
    assert answer.status_code == 200 and answer.json() == {"status": "deleted"}
    assert_error(api.get(f"{URL}/{reply['id']}", headers=scene.owner.headers), 404)
    assert_error(api.delete(path, headers=scene.owner.headers), 404)
    assert api.delete(f"{URL}/{other['id']}", headers=admin.headers).status_code == 200


def test_bad_parents_and_bodies(api: httpx.Client, scene: Scene) -> None:
    root = comment(api, scene.owner, map_id=scene.shared["id"])
    other_map = created(api, scene.owner, "/api/maps", {"name": "Other"})
    headers = scene.owner.headers
    missing = "00000000-0000-4000-8000-000000000000"
    answer = api.post(
        URL, json={"content": "x", "map_id": scene.shared["id"], "parent_id": missing},
        headers=headers,
    )  # fmt: skip
    assert "Parent comment" in assert_error(answer, 404)["message"]
    answer = api.post(
        URL, json={"content": "x", "map_id": other_map["id"], "parent_id": root["id"]},
        headers=headers,
    )  # fmt: skip
    assert "same map" in assert_error(answer, 400)["message"]
    for body in (
        {"content": "x", "map_id": scene.shared["id"], "layer_id": missing},
        {"content": "x"},
        {"content": "   ", "map_id": scene.shared["id"]},
        {"content": "", "map_id": scene.shared["id"]},
        {"content": "x" * 10_001, "map_id": scene.shared["id"]},
        {"content": "x", "map_id": "not-a-uuid"},
        {"content": "x", "map_id": scene.shared["id"], "author_id": missing},
        {"map_id": scene.shared["id"]},
    ):
        assert_error(api.post(URL, json=body, headers=headers), 422)
    assert_error(api.post(URL, json={"content": "x", "map_id": missing}, headers=headers), 404)
    assert_error(api.post(URL, json={"content": "x", "layer_id": missing}, headers=headers), 404)
    assert_error(api.put(f"{URL}/{root['id']}", json={"content": " "}, headers=headers), 422)
    assert_error(api.put(f"{URL}/{root['id']}", json={}, headers=headers), 422)
    assert_error(api.get(f"{URL}/{missing}", headers=headers), 404)
    assert_error(api.get(URL, params={"limit": 1001}), 422)
    assert_error(api.get(URL, params={"map_id": "nope"}), 422)
    # Nothing above wrote a comment.
    listed = api.get(URL, params={"limit": 1000}, headers=headers).json()
    assert [c["id"] for c in listed if c["author_id"] == root["author_id"]] == [root["id"]]
