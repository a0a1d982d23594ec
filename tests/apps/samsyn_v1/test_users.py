"""`/api/v1/users/me`: the caller as SamSyn shows a user, and closing the account."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.apps.samsyn_v1.conftest import ClerkUser, assert_error, created, signed_in


def test_me_is_samsyn_user_shape(api: httpx.Client, owner: ClerkUser) -> None:
    answer = api.get("/api/v1/users/me", headers=owner.headers)
    assert answer.status_code == 200, answer.text
    me = answer.json()
    assert me["clerk_id"] == owner.sub and me["email"] == owner.email
    assert (me["first_name"], me["last_name"]) == ("Olive", "Owner")
    assert set(me) == {
        "id", "clerk_id", "email", "username", "first_name", "last_name",
        "profile_image_url", "created_at", "updated_at",
    }  # fmt: skip
    assert me["id"] == signed_in(api, owner)["id"]


def test_first_sight_of_a_token_keeps_its_username_and_names(
    api: httpx.Client, make_user: Callable[..., ClerkUser]
) -> None:
    person = make_user(name=None)
    claims = {"username": "mas", "first_name": "Mary Ann", "last_name": "Smith"}
    headers = {"Authorization": f"Bearer {person.token(**claims)}"}
    me = api.get("/api/v1/users/me", headers=headers).json()
    assert (me["username"], me["first_name"], me["last_name"]) == ("mas", "Mary Ann", "Smith")
    assert signed_in(api, person)["name"] == "Mary Ann Smith"  # core's display name
    # OpenID's names do as well.
    oidc = make_user(name=None)
    claims = {"preferred_username": "ada", "given_name": "Ada", "family_name": "King Lovelace"}
    me = api.get("/api/v1/users/me", headers={"Authorization": f"Bearer {oidc.token(**claims)}"})
    assert (me.json()["username"], me.json()["last_name"]) == ("ada", "King Lovelace")


def test_me_needs_a_valid_token(api: httpx.Client, owner: ClerkUser) -> None:
    assert_error(api.get("/api/v1/users/me"), 401)
    assert_error(api.delete("/api/v1/users/me"), 401)
    bad = {"Authorization": "Bearer " + owner.token()[:-4] + "AAAA"}
    assert_error(api.get("/api/v1/users/me", headers=bad), 401)
    assert_error(api.delete("/api/v1/users/me", headers=bad), 401)


def test_admin_flag_comes_from_verified_public_metadata(
    api: httpx.Client, make_user: Callable[..., ClerkUser]
) -> None:
    person = make_user()
    assert signed_in(api, person)["is_admin"] is False
    # Granted by a token whose Clerk public metadata says so...
    promoted = {"Authorization": f"Bearer {person.token(public_metadata={'isAdmin': True})}"}
    assert api.get("/api/users/me", headers=promoted).json()["is_admin"] is True
    # ...kept by a token that is silent on it (no public metadata in the session template)...
    silent = {"Authorization": f"Bearer {person.token(public_metadata=None)}"}
    assert api.get("/api/users/me", headers=silent).json()["is_admin"] is True
    # ...and revoked by a token whose metadata no longer says so.
    assert signed_in(api, person)["is_admin"] is False
    # Only `true` grants; `unsafe_metadata` (which users write themselves) never does.
    for claims in (
        {"public_metadata": {"isAdmin": "true"}},
        {"public_metadata": {"isAdmin": 1}},
        {"unsafe_metadata": {"isAdmin": True}},
        {"public_metadata": "isAdmin"},
    ):
        headers = {"Authorization": f"Bearer {person.token(**claims)}"}
        assert api.get("/api/users/me", headers=headers).json()["is_admin"] is False, claims


def test_a_forged_admin_token_is_refused(
    api: httpx.Client, make_user: Callable[..., ClerkUser]
) -> None:
    from tests.apps.samsyn_v1.conftest import ClerkKeys

    forger = ClerkUser(keys=ClerkKeys(), is_admin=True)
    assert_error(api.get("/api/v1/users/me", headers=forger.headers), 401)


def test_closing_an_account_hands_maps_over_and_stops_its_tokens(
    api: httpx.Client, owner: ClerkUser, make_user: Callable[..., ClerkUser]
) -> None:
    editor, viewer, lone_viewer = make_user(), make_user(), make_user()
    ids = {u.sub: signed_in(api, u)["id"] for u in (owner, editor, viewer, lone_viewer)}
    body = {"name": "Shared", "permission_level": "collaborators"}
    shared = created(api, owner, "/api/maps", body)
    for who, permission in ((viewer, "view"), (editor, "edit")):
        created(
            api, owner, f"/api/maps/{shared['id']}/collaborators",
            {"user_id": ids[who.sub], "permission": permission},
        )  # fmt: skip
    viewed = created(api, owner, "/api/maps", body | {"name": "Viewed"})
    created(
        api, owner, f"/api/maps/{viewed['id']}/collaborators",
        {"user_id": ids[lone_viewer.sub], "permission": "view"},
    )  # fmt: skip
    alone = created(api, owner, "/api/maps", {"name": "Mine alone"})
    layer = created(api, owner, "/api/layers", {"name": "Zones", "source_type": "vector"})
    created(api, owner, f"/api/maps/{shared['id']}/layers", {"layer_id": layer["id"]})
    comment = created(
        api, owner, "/api/v1/comments", {"content": "Closing soon", "map_id": shared["id"]}
    )
    held = owner.headers  # one token, used before and after

    answer = api.delete("/api/v1/users/me", headers=held)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "success", "message": "Your account has been deleted"}

    # Every token of the account stops working at once, the one used and fresh ones.
    for headers in (held, owner.headers):
        assert_error(api.get("/api/v1/users/me", headers=headers), 403)
        assert_error(api.get("/api/maps", headers=headers), 403)
    # The editor owns the shared map now (not a collaborator any more); the viewer is still one.
    got = api.get(f"/api/maps/{shared['id']}", headers=editor.headers).json()
    assert got["created_by"] == ids[editor.sub]
    members = api.get(f"/api/maps/{shared['id']}/collaborators", headers=editor.headers).json()
    assert [m["user_id"] for m in members["items"]] == [ids[viewer.sub]]
    got = api.get(f"/api/maps/{viewed['id']}", headers=lone_viewer.headers).json()
    assert got["created_by"] == ids[lone_viewer.sub]
    # A map nobody shared stays with the closed account (private still: the admin's to manage).
    assert api.get(f"/api/maps/{alone['id']}", headers=editor.headers).status_code == 404
    # Layers and comments stay, shown as the deleted user's.
    got = api.get(f"/api/layers/{layer['id']}", headers=editor.headers).json()
    assert got["created_by"] == ids[owner.sub]
    kept = api.get(f"/api/v1/comments/{comment['id']}", headers=editor.headers).json()
    assert kept["author_name"] == "Deleted User" and kept["content"] == "Closing soon"
    # Closing twice: the account is already shut.
    assert_error(api.delete("/api/v1/users/me", headers=held), 403)


def test_admin_closing_own_account_keeps_others_maps(
    api: httpx.Client, admin: ClerkUser, owner: ClerkUser
) -> None:
    theirs = created(api, owner, "/api/maps", {"name": "Theirs"})
    assert api.delete("/api/v1/users/me", headers=admin.headers).status_code == 200
    got = api.get(f"/api/maps/{theirs['id']}", headers=owner.headers)
    assert got.status_code == 200 and got.json()["created_by"] == signed_in(api, owner)["id"]
