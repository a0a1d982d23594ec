"""`/api/v1/maps/{id}/collaborators`: SamSyn's roles (viewer/editor) and status codes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from tests.apps.samsyn_v1.conftest import ClerkUser, signed_in
from tests.apps.samsyn_v1.test_maps import new_map, share


def collaborators_url(map_id: str) -> str:
    return f"/api/v1/maps/{map_id}/collaborators"


def test_add_list_update_remove_as_owner(
    api: httpx.Client, owner: ClerkUser, make_user: Callable[..., ClerkUser]
) -> None:
    person = make_user(name="Cleo Collab")
    me = signed_in(api, person)
    map_ = new_map(api, owner)
    url = collaborators_url(map_["id"])
    added = api.post(
        url, json={"email": person.email.upper(), "role": "editor"}, headers=owner.headers
    )
    assert added.status_code == 201, added.text
    row = added.json()
    assert (
        row["user_id"] == me["id"] and row["role"] == "editor" and row["id"] and row["created_at"]
    )
    assert row["user"]["email"] == person.email and row["user"]["first_name"] == "Cleo"
    listed = api.get(url, headers=owner.headers).json()
    assert [c["user_id"] for c in listed] == [me["id"]]
    changed = api.put(f"{url}/{me['id']}", json={"role": "viewer"}, headers=owner.headers)
    assert changed.status_code == 200 and changed.json()["role"] == "viewer"
    assert changed.json()["id"] == row["id"]
    # The seed's API sees the same permission.
    seed = api.get(f"/api/maps/{map_['id']}/collaborators", headers=owner.headers).json()
    assert seed["items"][0]["permission"] == "view"
    removed = api.delete(f"{url}/{me['id']}", headers=owner.headers)
    assert removed.status_code == 200 and removed.json()["status"] == "success"
    assert api.get(url, headers=owner.headers).json() == []
    assert api.get(f"/api/v1/maps/{map_['id']}", headers=person.headers).status_code == 404


def test_samsyn_status_codes(
    api: httpx.Client, owner: ClerkUser, make_user: Callable[..., ClerkUser]
) -> None:
    person = make_user()
    map_ = new_map(api, owner)
    url = collaborators_url(map_["id"])
    share(api, map_["id"], owner, person, "viewer")
    unknown = api.post(url, json={"email": "nobody@example.org"}, headers=owner.headers)
    assert unknown.status_code == 404 and "nobody@example.org" in unknown.json()["message"]
    again = api.post(url, json={"email": person.email, "role": "editor"}, headers=owner.headers)
    assert again.status_code == 400 and "already a collaborator" in again.json()["message"]
    itself = api.post(url, json={"email": owner.email}, headers=owner.headers)
    assert itself.status_code == 400
    for body in (
        {"email": person.email, "role": "admin"},
        {"role": "viewer"},
        {"email": "x" * 400},
    ):
        assert api.post(url, json=body, headers=owner.headers).status_code == 422, body
    # Nothing changed by the refused requests.
    assert [c["role"] for c in api.get(url, headers=owner.headers).json()] == ["viewer"]
    missing = str(uuid.uuid4())
    assert (
        api.put(f"{url}/{missing}", json={"role": "editor"}, headers=owner.headers).status_code
        == 404
    )
    assert api.delete(f"{url}/{missing}", headers=owner.headers).status_code == 404
    assert api.post(collaborators_url(str(uuid.uuid4())), json={"email": person.email},
                    headers=owner.headers).status_code == 404  # fmt: skip


def test_editor_adds_viewers_only_and_viewer_stranger_anonymous_add_nobody(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser,
    make_user: Callable[..., ClerkUser],
) -> None:  # fmt: skip
    editor, viewer, newcomer = make_user(), make_user(), make_user()
    signed_in(api, newcomer)
    map_ = new_map(api, owner, edit_permission="collaborators")
    url = collaborators_url(map_["id"])
    share(api, map_["id"], owner, editor, "editor")
    share(api, map_["id"], owner, viewer, "viewer")
    as_editor = api.post(
        url, json={"email": newcomer.email, "role": "editor"}, headers=editor.headers
    )
    assert (
        as_editor.status_code == 403 and as_editor.json()["message"] == "Only owner can add editors"
    )
    as_viewer = api.post(url, json={"email": newcomer.email}, headers=viewer.headers)
    assert as_viewer.status_code == 403
    assert (
        api.post(url, json={"email": newcomer.email}, headers=stranger.headers).status_code == 404
    )
    assert api.post(url, json={"email": newcomer.email}).status_code == 401
    ok = api.post(url, json={"email": newcomer.email, "role": "viewer"}, headers=editor.headers)
    assert ok.status_code == 201, ok.text
    # Only the owner changes or removes collaborators.
    target = ok.json()["user_id"]
    assert (
        api.put(f"{url}/{target}", json={"role": "editor"}, headers=editor.headers).status_code
        == 403
    )
    assert api.delete(f"{url}/{target}", headers=editor.headers).status_code == 403
    assert api.delete(f"{url}/{target}", headers=stranger.headers).status_code == 404
    assert api.delete(f"{url}/{target}").status_code == 401
    # Members see the list; a stranger does not see the (non-public) map at all.
    assert len(api.get(url, headers=viewer.headers).json()) == 3
    assert api.get(url, headers=stranger.headers).status_code == 404
    assert api.get(url).status_code == 404


def test_public_readers_see_no_collaborators(
    api: httpx.Client, owner: ClerkUser, stranger: ClerkUser, make_user: Callable[..., ClerkUser]
) -> None:
    map_ = new_map(api, owner, view_permission="public")
    share(api, map_["id"], owner, make_user(), "viewer")
    url = collaborators_url(map_["id"])
    assert api.get(url).json() == []
    assert api.get(url, headers=stranger.headers).json() == []
    assert len(api.get(url, headers=owner.headers).json()) == 1


def test_an_editor_invites_viewers_whatever_the_edit_permission(
    api: httpx.Client, owner: ClerkUser, make_user: Callable[..., ClerkUser]
) -> None:
    editor, newcomer = make_user(), make_user()
    signed_in(api, newcomer)
    # `edit_permission` private: the editor collaborator edits nothing, yet is an editor
    # (their role) and invites viewers, as in SamSyn.
    map_ = new_map(api, owner, view_permission="collaborators", edit_permission="private")
    share(api, map_["id"], owner, editor, "editor")
    shown = api.get(f"/api/v1/maps/{map_['id']}", headers=editor.headers).json()
    assert shown["user_role"] == "editor"
    assert (
        api.put(f"/api/v1/maps/{map_['id']}", json={"zoom": 4}, headers=editor.headers).status_code
        == 403
    )
    url = collaborators_url(map_["id"])
    as_editor = api.post(
        url, json={"email": newcomer.email, "role": "editor"}, headers=editor.headers
    )
    assert as_editor.status_code == 403
    ok = api.post(url, json={"email": newcomer.email, "role": "viewer"}, headers=editor.headers)
    assert ok.status_code == 201 and ok.json()["role"] == "viewer", ok.text
    # The newcomer is a viewer and invites nobody.
    third = make_user()
    signed_in(api, third)
    assert api.post(url, json={"email": third.email}, headers=newcomer.headers).status_code == 403
    assert (
        api.get(f"/api/v1/maps/{map_['id']}", headers=newcomer.headers).json()["user_role"]
        == "viewer"
    )
