"""Sharing: invitations by user id or e-mail, pending invitations, removal, who may manage."""

from __future__ import annotations

import uuid

from tests.apps.samsyn.conftest import CALLERS, Team
from tests.builders import assert_error, register_user


def test_invite_existing_user_has_access_at_once_and_accepts_on_open(team: Team) -> None:
    map_ = team.create_map()
    url = f"/api/maps/{map_['id']}/collaborators"
    response = team.client.post(
        url, json={"email": "Viewer@Example.org", "permission": "view"}, headers=team.as_("owner")
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "active" and response.json()["accepted_at"] is None
    assert (
        team.client.get(f"/api/maps/{map_['id']}", headers=team.as_("owner")).json()[
            "permission_level"
        ]
        == "collaborators"
    )
    assert team.client.get(f"/api/maps/{map_['id']}", headers=team.as_("viewer")).status_code == 200
    items = team.client.get(url, headers=team.as_("viewer")).json()["items"]
    assert items[0]["accepted_at"] is not None and items[0]["permission"] == "view"
    # Inviting again changes the permission.
    again = team.client.post(
        url,
        json={"user_id": team.users["viewer"]["id"], "permission": "edit"},
        headers=team.as_("owner"),
    )
    assert again.status_code == 200 and again.json()["permission"] == "edit"
    assert (
        team.client.get(f"/api/maps/{map_['id']}", headers=team.as_("viewer")).json()["role"]
        == "editor"
    )


def test_pending_invitation_takes_effect_when_the_person_registers(team: Team) -> None:
    map_ = team.create_map()
    url = f"/api/maps/{map_['id']}/collaborators"
    response = team.client.post(
        url, json={"email": "newcomer@example.org", "permission": "edit"}, headers=team.as_("owner")
    )
    assert response.status_code == 201
    assert response.json() | {"invited_at": None} == {
        "user_id": None,
        "email": "newcomer@example.org",
        "name": None,
        "avatar_url": None,
        "permission": "edit",
        "status": "pending",
        "invited_at": None,
        "accepted_at": None,
    }
    _, token = register_user(team.client, "newcomer@example.org")
    headers = {"Authorization": f"Bearer {token}"}
    listed = team.client.get("/api/maps", headers=headers).json()["items"]
    assert [m["id"] for m in listed] == [map_["id"]] and listed[0]["role"] == "editor"
    items = team.client.get(url, headers=team.as_("owner")).json()["items"]
    assert [(i["email"], i["status"]) for i in items] == [("newcomer@example.org", "active")]


def test_remove_collaborators_and_invitations(team: Team) -> None:
    map_ = team.shared_map()
    url = f"/api/maps/{map_['id']}/collaborators"
    team.client.post(url, json={"email": "later@example.org"}, headers=team.as_("owner"))
    assert_error(
        team.client.delete(f"{url}/{team.users['viewer']['id']}", headers=team.as_("editor")), 403
    )
    assert (
        team.client.delete(
            f"{url}/{team.users['viewer']['id']}", headers=team.as_("viewer")
        ).status_code
        == 204
    )
    assert_error(team.client.get(f"/api/maps/{map_['id']}", headers=team.as_("viewer")), 404)
    assert (
        team.client.delete(f"{url}/later@example.org", headers=team.as_("owner")).status_code == 204
    )
    assert_error(team.client.delete(f"{url}/later@example.org", headers=team.as_("owner")), 404)
    assert_error(team.client.delete(f"{url}/{uuid.uuid4()}", headers=team.as_("owner")), 404)
    assert [
        i["email"] for i in team.client.get(url, headers=team.as_("owner")).json()["items"]
    ] == ["editor@example.org"]


def test_remove_an_active_collaborator_by_email(team: Team) -> None:
    """The e-mail of an active collaborator removes that collaborator (it was a 404)."""
    map_ = team.shared_map()
    url = f"/api/maps/{map_['id']}/collaborators"
    assert team.client.get(f"/api/maps/{map_['id']}", headers=team.as_("viewer")).status_code == 200
    # Not the owner, not themselves: refused, and still a member.
    assert_error(team.client.delete(f"{url}/viewer@example.org", headers=team.as_("editor")), 403)
    response = team.client.delete(f"{url}/Viewer@Example.org", headers=team.as_("owner"))
    assert response.status_code == 204, response.text
    assert_error(team.client.get(f"/api/maps/{map_['id']}", headers=team.as_("viewer")), 404)
    emails = [i["email"] for i in team.client.get(url, headers=team.as_("owner")).json()["items"]]
    assert emails == ["editor@example.org"]
    # A collaborator leaves by their own e-mail too.
    leave = team.client.delete(f"{url}/editor@example.org", headers=team.as_("editor"))
    assert leave.status_code == 204, leave.text
    assert team.client.get(url, headers=team.as_("owner")).json()["items"] == []
    assert_error(team.client.delete(f"{url}/viewer@example.org", headers=team.as_("owner")), 404)


def test_bad_invitations(team: Team) -> None:
    map_ = team.create_map()
    url = f"/api/maps/{map_['id']}/collaborators"
    for body in (
        {},
        {"email": "not-an-email"},
        {"email": "a@example.org", "user_id": team.users["viewer"]["id"]},
        {"email": "a@example.org", "permission": "admin"},
    ):
        assert_error(team.client.post(url, json=body, headers=team.as_("owner")), 422)
    assert_error(
        team.client.post(url, json={"user_id": str(uuid.uuid4())}, headers=team.as_("owner")), 404
    )
    assert_error(
        team.client.post(
            url, json={"user_id": team.users["owner"]["id"]}, headers=team.as_("owner")
        ),
        422,
    )
    assert team.client.get(url, headers=team.as_("owner")).json()["items"] == []
    assert (
        team.client.get(f"/api/maps/{map_['id']}", headers=team.as_("owner")).json()[
            "permission_level"
        ]
        == "private"
    )


def test_collaborator_endpoints_by_role(team: Team) -> None:
    for who in CALLERS:
        _collaborator_endpoints_by_role(team, who)


def _collaborator_endpoints_by_role(team: Team, who: str) -> None:
    map_ = team.shared_map(permission_level="public")
    url = f"/api/maps/{map_['id']}/collaborators"
    read = {"stranger": 403, "anonymous": 401}.get(who, 200)
    assert team.client.get(url, headers=team.as_(who)).status_code == read
    invite = {"owner": 201, "admin": 201, "anonymous": 401}.get(who, 403)
    response = team.client.post(url, json={"email": "x@example.org"}, headers=team.as_(who))
    assert response.status_code == invite, response.text
