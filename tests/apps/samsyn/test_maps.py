"""Maps and their layers: CRUD, listing, ordering, and who may do what."""

from __future__ import annotations

import uuid

from tests.apps.samsyn.conftest import CALLERS, Team
from tests.builders import assert_error

READ = {"owner": 200, "editor": 200, "viewer": 200, "stranger": 404, "anonymous": 404, "admin": 200}


def test_get_map_by_role(team: Team) -> None:
    for who in CALLERS:
        _get_map_by_role(team, who)


def _get_map_by_role(team: Team, who: str) -> None:
    map_ = team.shared_map()
    layer = team.create_layer()
    team.add_layer(map_["id"], layer["id"])
    response = team.client.get(f"/api/maps/{map_['id']}", headers=team.as_(who))
    assert response.status_code == READ[who], response.text
    if response.status_code == 200:
        body = response.json()
        assert body["role"] == {"editor": "editor", "viewer": "viewer"}.get(who, "owner")
        assert [ml["layer_id"] for ml in body["layers"]] == [layer["id"]]
        assert body["layers"][0]["layer"]["name"] == "MPAs"
    else:
        assert_error(response, READ[who])


def test_public_and_private_maps(team: Team) -> None:
    public = team.create_map(name="Public", permission_level="public")
    private = team.create_map(name="Private")
    assert team.client.get(f"/api/maps/{public['id']}").json()["role"] == "public"
    assert_error(team.client.get(f"/api/maps/{private['id']}", headers=team.as_("stranger")), 404)
    # Sharing a private map makes it a collaborators map; making it private again suspends.
    team.share(private["id"], "viewer", "view")
    assert (
        team.client.get(f"/api/maps/{private['id']}", headers=team.as_("viewer")).status_code == 200
    )
    team.client.put(
        f"/api/maps/{private['id']}",
        json={"permission_level": "private"},
        headers=team.as_("owner"),
    )
    assert_error(team.client.get(f"/api/maps/{private['id']}", headers=team.as_("viewer")), 404)


def test_list_maps_owned_shared_and_public(team: Team) -> None:
    team.shared_map(name="Shared")
    own = team.create_map("stranger", name="Stranger's own")
    public = team.create_map("stranger", name="Stranger's public", permission_level="public")

    def names(who: str, query: str = "") -> set[str]:
        response = team.client.get(f"/api/maps{query}", headers=team.as_(who))
        assert response.status_code == 200, response.text
        return {m["name"] for m in response.json()["items"]}

    assert names("owner") == {"Shared"}
    assert names("viewer") == {"Shared"}
    assert names("stranger") == {own["name"], public["name"]}
    assert names("viewer", "?include=public") == {"Shared", public["name"]}
    assert names("anonymous") == {public["name"]}
    assert names("admin", "?include=all") == {"Shared", own["name"], public["name"]}
    assert_error(team.client.get("/api/maps?include=all", headers=team.as_("owner")), 403)
    assert_error(team.client.get("/api/maps?include=everything", headers=team.as_("owner")), 422)
    page = team.client.get("/api/maps?include=public&limit=1", headers=team.as_("viewer")).json()
    assert page["total"] == 2 and len(page["items"]) == 1


def test_update_and_delete_map_by_role(team: Team) -> None:
    for who, code in [
        ("owner", 200),
        ("editor", 403),
        ("viewer", 403),
        ("stranger", 404),
        ("anonymous", 401),
        ("admin", 200),
    ]:
        _update_and_delete_map_by_role(team, who, code)


def _update_and_delete_map_by_role(team: Team, who: str, code: int) -> None:
    map_ = team.shared_map()
    response = team.client.put(
        f"/api/maps/{map_['id']}", json={"name": "Renamed"}, headers=team.as_(who)
    )
    assert response.status_code == code, response.text
    if code == 200:
        assert response.json()["name"] == "Renamed"
    else:
        assert_error(response, code)
    response = team.client.delete(f"/api/maps/{map_['id']}", headers=team.as_(who))
    assert response.status_code == (204 if code == 200 else code)
    after = team.client.get(f"/api/maps/{map_['id']}", headers=team.as_("owner"))
    assert after.status_code == (404 if code == 200 else 200)


def test_create_map_validation(team: Team) -> None:
    assert_error(team.client.post("/api/maps", json={"name": "x"}), 401)
    for bad in (
        {"name": ""},
        {"name": "x", "center_lat": 91},
        {"name": "x", "zoom": 30},
        {"name": "x", "permission_level": "secret"},
        {"name": "x", "extra": 1},
    ):
        assert_error(team.client.post("/api/maps", json=bad, headers=team.as_("owner")), 422)
    assert team.client.get("/api/maps", headers=team.as_("owner")).json()["total"] == 0


def test_add_layer_by_role(team: Team) -> None:
    for who, code in [
        ("owner", 201),
        ("editor", 201),
        ("viewer", 403),
        ("stranger", 404),
        ("anonymous", 401),
        ("admin", 201),
    ]:
        _add_layer_by_role(team, who, code)


def _add_layer_by_role(team: Team, who: str, code: int) -> None:
    map_ = team.shared_map()
    layer = team.create_layer(is_global=True)
    response = team.client.post(
        f"/api/maps/{map_['id']}/layers",
        json={"layer_id": layer["id"], "opacity": 0.5},
        headers=team.as_(who),
    )
    assert response.status_code == code, response.text
    if code == 201:
        assert response.json()["opacity"] == 0.5
        dup = team.client.post(
            f"/api/maps/{map_['id']}/layers", json={"layer_id": layer["id"]}, headers=team.as_(who)
        )
        assert_error(dup, 409)
    else:
        assert_error(response, code)


def test_add_layer_needs_a_readable_layer(team: Team) -> None:
    map_ = team.shared_map()
    private_layer = team.create_layer("stranger")
    response = team.client.post(
        f"/api/maps/{map_['id']}/layers",
        json={"layer_id": private_layer["id"]},
        headers=team.as_("editor"),
    )
    assert_error(response, 404)
    response = team.client.post(
        f"/api/maps/{map_['id']}/layers",
        json={"layer_id": str(uuid.uuid4())},
        headers=team.as_("owner"),
    )
    assert_error(response, 404)


def _order(team: Team, map_id: str) -> list[str]:
    body = team.client.get(f"/api/maps/{map_id}", headers=team.as_("owner")).json()
    assert [ml["display_order"] for ml in body["layers"]] == list(range(len(body["layers"])))
    return [ml["layer_id"] for ml in body["layers"]]


def test_reorder_insert_remove_and_visibility(team: Team) -> None:
    map_ = team.shared_map()
    a, b, c = (team.create_layer(name=n)["id"] for n in "abc")
    team.add_layer(map_["id"], a)
    team.add_layer(map_["id"], b)
    team.add_layer(map_["id"], c, display_order=0)
    assert _order(team, map_["id"]) == [c, a, b]
    url = f"/api/maps/{map_['id']}/layers/reorder"
    response = team.client.put(url, json={"layer_ids": [b, c, a]}, headers=team.as_("editor"))
    assert response.status_code == 200, response.text
    assert [ml["layer_id"] for ml in response.json()["layers"]] == [b, c, a]
    # Foreign, duplicated or missing ids: 422, order unchanged.
    stranger_layer = team.create_layer("stranger")["id"]
    for ids in ([b, c, a, stranger_layer], [b, c, c], [b, c], [str(uuid.uuid4()), b, c, a]):
        assert_error(team.client.put(url, json={"layer_ids": ids}, headers=team.as_("owner")), 422)
    assert _order(team, map_["id"]) == [b, c, a]
    assert_error(
        team.client.put(url, json={"layer_ids": [a, b, c]}, headers=team.as_("viewer")), 403
    )
    assert_error(team.client.put(url, json={"layer_ids": [a, b, c]}), 401)

    item = f"/api/maps/{map_['id']}/layers/{c}"
    response = team.client.put(
        item, json={"is_visible": False, "opacity": 0.25}, headers=team.as_("editor")
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_visible"] is False and response.json()["opacity"] == 0.25
    assert_error(team.client.put(item, json={"opacity": 2}, headers=team.as_("owner")), 422)
    assert_error(team.client.put(item, json={"opacity": 0.5}, headers=team.as_("viewer")), 403)

    assert_error(team.client.delete(item, headers=team.as_("viewer")), 403)
    assert team.client.delete(item, headers=team.as_("editor")).status_code == 204
    assert_error(team.client.delete(item, headers=team.as_("editor")), 404)
    assert _order(team, map_["id"]) == [b, a]
    # The layer itself is still there.
    assert team.client.get(f"/api/layers/{c}", headers=team.as_("owner")).status_code == 200


def test_users_me(team: Team) -> None:
    response = team.client.get("/api/users/me", headers=team.as_("owner"))
    assert response.status_code == 200
    assert response.json()["email"] == "owner@example.org"
    assert_error(team.client.get("/api/users/me"), 401)
