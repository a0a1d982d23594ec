"""Comments: one target, threads, replies stay on their parent's target, who may do what."""

from __future__ import annotations

import uuid

from tests.apps.samsyn.conftest import CALLERS, Team
from tests.builders import assert_error


def _comment(team: Team, who: str = "owner", **body: object) -> dict:
    response = team.client.post(
        "/api/comments", json={"content": "hello"} | body, headers=team.as_(who)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_threads_tree_and_flat(team: Team) -> None:
    map_ = team.shared_map()
    root = _comment(team, map_id=map_["id"], content="root")
    reply = _comment(team, "viewer", parent_id=root["id"], content="reply")
    assert reply["map_id"] == map_["id"] and reply["author"]["name"] == "Viewer"
    _comment(team, "editor", parent_id=reply["id"], map_id=map_["id"], content="deep")
    second = _comment(team, map_id=map_["id"], content="second")
    tree = team.client.get(f"/api/comments?mapId={map_['id']}", headers=team.as_("viewer")).json()
    assert tree["total"] == 2 and [c["content"] for c in tree["items"]] == ["root", "second"]
    assert tree["items"][0]["replies"][0]["content"] == "reply"
    assert tree["items"][0]["replies"][0]["replies"][0]["content"] == "deep"
    flat = team.client.get(
        f"/api/comments?map_id={map_['id']}&format=flat&limit=2&offset=1",
        headers=team.as_("viewer"),
    ).json()
    assert flat["total"] == 4 and [c["content"] for c in flat["items"]] == ["reply", "deep"]
    # Resolve, filter, unresolve.
    url = f"/api/comments/{second['id']}"
    assert team.client.put(url, json={"is_resolved": True}, headers=team.as_("editor")).json()[
        "is_resolved"
    ]
    open_ = team.client.get(
        f"/api/comments?mapId={map_['id']}&isResolved=false", headers=team.as_("owner")
    )
    assert [c["content"] for c in open_.json()["items"]] == ["root"]
    assert_error(team.client.put(url, json={"is_resolved": False}, headers=team.as_("viewer")), 403)
    # Deleting a thread deletes its replies.
    assert (
        team.client.delete(f"/api/comments/{root['id']}", headers=team.as_("owner")).status_code
        == 204
    )
    flat = team.client.get(
        f"/api/comments?mapId={map_['id']}&format=flat", headers=team.as_("owner")
    ).json()
    assert [c["content"] for c in flat["items"]] == ["second"]


def test_layer_comments_and_both_targets(team: Team) -> None:
    map_ = team.shared_map()
    layer = team.create_layer(is_global=True)
    on_layer = _comment(team, "stranger", layer_id=layer["id"], content="on layer")
    _comment(team, map_id=map_["id"], content="on map")
    both = team.client.get(
        f"/api/comments?mapId={map_['id']}&layerId={layer['id']}&format=flat",
        headers=team.as_("viewer"),
    ).json()
    assert sorted(c["content"] for c in both["items"]) == ["on layer", "on map"]
    assert on_layer["layer_id"] == layer["id"] and on_layer["map_id"] is None


def test_bad_comments_write_nothing(team: Team) -> None:
    map_ = team.shared_map()
    other = team.create_map(name="Other")
    layer = team.create_layer()
    root = _comment(team, map_id=map_["id"])
    bad = [
        ({"content": "x"}, 422),  # no target
        ({"content": "x", "map_id": map_["id"], "layer_id": layer["id"]}, 422),  # both
        ({"content": "", "map_id": map_["id"]}, 422),
        (
            {"content": "x", "parent_id": root["id"], "map_id": other["id"]},
            422,
        ),  # reply across maps
        ({"content": "x", "parent_id": root["id"], "layer_id": layer["id"]}, 422),
        ({"content": "x", "parent_id": str(uuid.uuid4())}, 404),
        ({"content": "x", "map_id": str(uuid.uuid4())}, 404),
    ]
    for body, code in bad:
        assert_error(team.client.post("/api/comments", json=body, headers=team.as_("owner")), code)
    assert_error(team.client.get("/api/comments", headers=team.as_("owner")), 422)
    assert_error(
        team.client.get("/api/comments?format=xml&mapId=" + map_["id"], headers=team.as_("owner")),
        422,
    )
    flat = team.client.get(
        f"/api/comments?mapId={map_['id']}&format=flat", headers=team.as_("owner")
    ).json()
    assert flat["total"] == 1
    assert (
        team.client.get(f"/api/comments?mapId={other['id']}", headers=team.as_("owner")).json()[
            "total"
        ]
        == 0
    )


def test_comment_permissions(team: Team) -> None:
    for who in CALLERS:
        _comment_permissions(team, who)


def _comment_permissions(team: Team, who: str) -> None:
    map_ = team.shared_map(permission_level="public")
    mine = _comment(team, "editor", map_id=map_["id"])
    read = team.client.get(f"/api/comments?mapId={map_['id']}", headers=team.as_(who))
    assert read.status_code == 200
    create = {"stranger": 403, "anonymous": 401}.get(who, 201)
    response = team.client.post(
        "/api/comments", json={"content": "hi", "map_id": map_["id"]}, headers=team.as_(who)
    )
    assert response.status_code == create, response.text
    url = f"/api/comments/{mine['id']}"
    edit = {"editor": 200, "anonymous": 401}.get(who, 403)
    assert (
        team.client.put(url, json={"content": "edited"}, headers=team.as_(who)).status_code == edit
    )
    resolve = {"owner": 200, "editor": 200, "admin": 200, "anonymous": 401}.get(who, 403)
    assert (
        team.client.put(url, json={"is_resolved": True}, headers=team.as_(who)).status_code
        == resolve
    )
    delete = {"owner": 204, "editor": 204, "admin": 204, "anonymous": 401}.get(who, 403)
    assert team.client.delete(url, headers=team.as_(who)).status_code == delete


def test_private_map_comments_are_hidden(team: Team) -> None:
    map_ = team.shared_map()
    comment = _comment(team, map_id=map_["id"])
    assert_error(
        team.client.get(f"/api/comments?mapId={map_['id']}", headers=team.as_("stranger")), 404
    )
    assert_error(team.client.get(f"/api/comments?mapId={map_['id']}"), 404)
    assert_error(
        team.client.put(
            f"/api/comments/{comment['id']}", json={"content": "x"}, headers=team.as_("stranger")
        ),
        404,
    )
    assert_error(
        team.client.delete(f"/api/comments/{comment['id']}", headers=team.as_("stranger")), 404
    )
