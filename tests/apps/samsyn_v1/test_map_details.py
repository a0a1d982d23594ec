"""`/api/v1/maps`' nested details (`maps.service.list_in_full`: one query for any number of
maps): each map's creator, its layers with their creators and, to members only, its
collaborators with their users, in order."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.apps.samsyn_v1.conftest import ClerkUser, created, signed_in
from tests.apps.samsyn_v1.test_maps import new_map, share


def test_list_nests_creators_layers_and_collaborators(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser,
    make_user: Callable[..., ClerkUser],
) -> None:  # fmt: skip
    viewer, editor = make_user(), make_user()
    me, other = signed_in(api, owner), signed_in(api, stranger)
    shared = new_map(api, owner, view_permission="public")
    share(api, shared["id"], owner, viewer, "viewer")
    share(api, shared["id"], owner, editor, "editor")
    mine = new_map(api, owner)  # no members, no layers
    theirs = new_map(api, stranger, view_permission="public")
    layers = [
        created(api, user, "/api/layers", {"name": name, "source_type": "vector"} | extra)
        for user, name, extra in ((owner, "Mine", {}), (stranger, "Theirs", {"is_global": True}))
    ]
    for layer in layers:
        added = api.post(
            f"/api/v1/maps/{shared['id']}/layers",
            json={"layer_id": layer["id"]},
            headers=owner.headers,
        )
        assert added.status_code in (200, 201), added.text

    listed = api.get("/api/v1/maps", headers=owner.headers).json()
    by_id = {m["id"]: m for m in listed}
    assert {shared["id"], mine["id"], theirs["id"]} <= set(by_id)
    for map_ in listed:  # the list answers what each map's own route answers
        one = api.get(f"/api/v1/maps/{map_['id']}", headers=owner.headers).json()
        assert map_ | {"updated_at": None} == one | {"updated_at": None}
    got = by_id[shared["id"]]
    assert got["creator"]["id"] == me["id"] and got["user_role"] == "owner"
    people = [(c["role"], c["user"]["email"]) for c in got["collaborators"]]
    assert people == [("viewer", viewer.email), ("editor", editor.email)]
    assert [ml["layer"]["name"] for ml in got["map_layers"]] == ["Mine", "Theirs"]
    creators = [ml["layer"]["creator"]["id"] for ml in got["map_layers"]]
    assert creators == [me["id"], other["id"]]
    assert by_id[mine["id"]]["collaborators"] == [] and by_id[mine["id"]]["map_layers"] == []
    assert by_id[theirs["id"]]["creator"]["id"] == other["id"]
    assert by_id[theirs["id"]]["user_role"] == "viewer"

    # A public reader sees the layers and creators, not the collaborators.
    for headers in ({}, make_user().headers):
        seen = {m["id"]: m for m in api.get("/api/v1/maps", headers=headers).json()}
        public = seen[shared["id"]]
        assert public["collaborators"] == [] and public["creator"]["id"] == me["id"]
        assert [ml["layer"]["creator"]["id"] for ml in public["map_layers"]] == creators
