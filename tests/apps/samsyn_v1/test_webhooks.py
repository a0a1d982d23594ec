"""`/api/v1/webhooks/clerk`: core's Svix-verified user sync, answered as SamSyn answers."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from svix.webhooks import Webhook

from tests.apps.samsyn_v1.conftest import ClerkUser, assert_error, created, signed_in

SECRET = "whsec_" + base64.b64encode(b"samsyn-v1-webhook-test-secret-32").decode()
URL = "/api/v1/webhooks/clerk"


@pytest.fixture(scope="module")
def v1_env() -> dict[str, str]:
    return {"CLERK_WEBHOOK_SECRET": SECRET}


def send(
    api: httpx.Client, event: dict[str, Any], *, secret: str = SECRET, age: int = 0
) -> httpx.Response:
    payload = json.dumps(event)
    msg_id = f"msg_{uuid.uuid4().hex}"
    at = datetime.now(UTC) - timedelta(seconds=age)
    headers = {
        "Content-Type": "application/json",
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, at, payload),
    }
    return api.post(URL, content=payload.encode(), headers=headers)


def send_core(api: httpx.Client, event: dict[str, Any]) -> httpx.Response:
    """`event` signed for core's own route, `/api/webhooks/clerk`."""
    payload = json.dumps(event)
    msg_id, at = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    headers = {
        "Content-Type": "application/json",
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(SECRET).sign(msg_id, at, payload),
    }
    return api.post("/api/webhooks/clerk", content=payload.encode(), headers=headers)


def clerk_user(kind: str, sub: str, email: str | None = None, **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": sub, "object": "user", "first_name": "Wendy", "last_name": "Hook"}
    if email is not None:
        body["email_addresses"] = [{"id": "idn_1", "email_address": email}]
        body["primary_email_address_id"] = "idn_1"
    return {"type": kind, "object": "event", "data": body | data}


def test_created_updated_deleted(api: httpx.Client, make_user: Callable[..., ClerkUser]) -> None:
    person = make_user()
    for _ in range(2):  # a repeated delivery changes nothing
        answer = send(api, clerk_user("user.created", person.sub, person.email))
        assert answer.status_code == 200 and answer.json() == {"status": "success"}
    me = api.get("/api/v1/users/me", headers=person.headers).json()
    assert me["email"] == person.email
    updated = clerk_user("user.updated", person.sub, "new-" + person.email, first_name="Wanda")
    assert send(api, updated).json() == {"status": "success"}
    me = api.get("/api/v1/users/me", headers=person.headers).json()
    assert (me["email"], me["first_name"]) == ("new-" + person.email, "Wanda")
    assert send(api, clerk_user("user.deleted", person.sub, deleted=True)).json() == {
        "status": "success"
    }
    assert_error(api.get("/api/v1/users/me", headers=person.headers), 403)
    # Deleting again, or an unknown user: acknowledged, nothing to do.
    assert send(api, clerk_user("user.deleted", person.sub)).status_code == 200
    assert send(api, clerk_user("user.deleted", "user_never_seen")).status_code == 200


def test_created_without_email_is_refused_as_samsyn_does(api: httpx.Client) -> None:
    sub = "user_" + uuid.uuid4().hex[:20]
    answer = send(api, clerk_user("user.created", sub))
    assert answer.status_code == 200  # so Clerk does not retry bad data
    assert answer.json() == {
        "status": "error",
        "message": "Missing required user data (id or email)",
    }
    headers = {"Authorization": "Bearer x"}
    assert api.get("/api/v1/users/me", headers=headers).status_code == 401
    assert (
        send(api, {"type": "user.created", "data": {"email_addresses": []}}).json()["status"]
        == "error"
    )


def test_username_and_names_are_kept_as_clerk_gives_them(
    api: httpx.Client, make_user: Callable[..., ClerkUser]
) -> None:
    person = make_user(name=None)
    profile = {"username": "mas", "first_name": "Mary Ann", "last_name": "Smith"}
    assert send(api, clerk_user("user.created", person.sub, person.email, **profile)).json() == {
        "status": "success"
    }
    me = api.get("/api/v1/users/me", headers=person.headers).json()
    assert (me["username"], me["first_name"], me["last_name"]) == ("mas", "Mary Ann", "Smith")
    # Core's own view keeps its one display name.
    assert signed_in(api, person)["name"] == "Mary Ann Smith"
    # An update replaces the profile: a name Clerk no longer has is cleared.
    renamed = {"username": "mary", "first_name": "Mary", "last_name": None}
    assert send(api, clerk_user("user.updated", person.sub, person.email, **renamed)).json() == {
        "status": "success"
    }
    me = api.get("/api/v1/users/me", headers=person.headers).json()
    assert (me["username"], me["first_name"], me["last_name"]) == ("mary", "Mary", None)
    # The core route fills the same fields.
    other = make_user(name=None)
    only_username = {"username": "solo", "first_name": None, "last_name": None}
    core = send_core(api, clerk_user("user.created", other.sub, other.email, **only_username))
    assert core.status_code == 200, core.text
    me = api.get("/api/v1/users/me", headers=other.headers).json()
    assert (me["username"], me["first_name"], me["last_name"]) == ("solo", None, None)
    assert signed_in(api, other)["name"] == "solo"


def test_unknown_events_are_acknowledged(api: httpx.Client) -> None:
    for event in (
        {"type": "session.created", "data": {"id": "sess_1"}},
        {"type": "user.updated", "data": {"id": 42}},
    ):
        answer = send(api, event)
        assert answer.status_code == 200 and answer.json() == {"status": "success"}


def test_bad_signatures_are_400(api: httpx.Client) -> None:
    event = clerk_user("user.created", "user_forged", "forged@example.org")
    other = "whsec_" + base64.b64encode(b"not-the-secret-of-this-server-32").decode()
    wrong = assert_error(send(api, event, secret=other), 400)
    # SamSyn's wording, which its frontend reads from `detail`:
    assert wrong["message"].startswith("Webhook verification failed: ")
    assert "verification failed" in wrong["detail"].lower()
    stale = assert_error(send(api, event, age=3600), 400)  # replayed outside Svix's window
    assert stale["message"].startswith("Webhook verification failed: ")
    assert_error(api.post(URL, json=event), 400)  # unsigned
    answer = api.post(URL, content=b"\xff" * 10, headers={"svix-id": "x"})
    assert_error(answer, 400)
    assert_error(send(api, {"type": "user.created", "data": "nope"}), 400)


def test_admin_flag_follows_clerk_public_metadata(
    api: httpx.Client, make_user: Callable[..., ClerkUser]
) -> None:
    person = make_user()
    silent = {"Authorization": f"Bearer {person.token(public_metadata=None)}"}
    assert api.get("/api/users/me", headers=silent).json()["is_admin"] is False
    grant = clerk_user("user.updated", person.sub, person.email, public_metadata={"isAdmin": True})
    assert send(api, grant).json() == {"status": "success"}
    assert api.get("/api/users/me", headers=silent).json()["is_admin"] is True
    revoke = clerk_user("user.updated", person.sub, person.email, public_metadata={})
    assert send(api, revoke).json() == {"status": "success"}
    assert api.get("/api/users/me", headers=silent).json()["is_admin"] is False
    # `unsafe_metadata` is the user's own to write: it grants nothing.
    forged = clerk_user("user.updated", person.sub, person.email, unsafe_metadata={"isAdmin": True})
    send(api, forged)
    assert api.get("/api/users/me", headers=silent).json()["is_admin"] is False


def test_deleted_hands_maps_over(
    api: httpx.Client, owner: ClerkUser, make_user: Callable[..., ClerkUser]
) -> None:
    editor = make_user()
    editor_id = signed_in(api, editor)["id"]
    shared = created(api, owner, "/api/maps", {"name": "Kept", "permission_level": "collaborators"})
    created(
        api, owner, f"/api/maps/{shared['id']}/collaborators",
        {"user_id": editor_id, "permission": "edit"},
    )  # fmt: skip
    assert send(api, clerk_user("user.deleted", owner.sub, deleted=True)).status_code == 200
    got = api.get(f"/api/maps/{shared['id']}", headers=editor.headers).json()
    assert got["created_by"] == editor_id
    assert_error(api.get("/api/maps", headers=owner.headers), 403)


def test_core_route_is_unchanged(api: httpx.Client, make_user: Callable[..., ClerkUser]) -> None:
    person = make_user()
    payload = json.dumps(clerk_user("user.created", person.sub))
    msg_id, at = "msg_core", datetime.now(UTC)
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(SECRET).sign(msg_id, at, payload),
    }
    answer = api.post("/api/webhooks/clerk", content=payload.encode(), headers=headers)
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
