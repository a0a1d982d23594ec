"""Clerk webhooks: Svix signatures, user created/updated/deleted, idempotency, configuration."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from svix.webhooks import Webhook

from tests.builders import assert_error, auth_headers, close_code_within, register_user, run_db
from tests.conftest import truncate_all
from worldbase.core import users
from worldbase.core.models import Job, JobStatus, User
from worldbase.settings import Settings

SECRET = "whsec_" + base64.b64encode(b"clerk-webhook-test-secret-32byte").decode()
URL = "/api/webhooks/clerk"


@pytest.fixture
def hook_client(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    client = app_factory(make_settings(clerk_webhook_secret=SECRET))
    client.portal.call(truncate_all, client.app.state.services)  # type: ignore[union-attr, attr-defined]
    return client


def signed(
    event: dict[str, Any],
    *,
    secret: str = SECRET,
    at: datetime | None = None,
    msg_id: str | None = None,
) -> dict[str, Any]:
    payload = json.dumps(event)
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "content": payload.encode(),
        "headers": {
            "Content-Type": "application/json",
            "svix-id": msg_id,
            "svix-timestamp": str(int(at.timestamp())),
            "svix-signature": Webhook(secret).sign(msg_id, at, payload),
        },
    }


def user_event(kind: str, clerk_id: str, **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": clerk_id, "object": "user"}
    body.update(data)
    return {"type": kind, "object": "event", "data": body}


def profile(email: str, first: str, last: str, image: str | None = None) -> dict[str, Any]:
    return {
        "email_addresses": [
            {"id": "idn_other", "email_address": "secondary@example.org"},
            {"id": "idn_primary", "email_address": email},
        ],
        "primary_email_address_id": "idn_primary",
        "first_name": first,
        "last_name": last,
        "image_url": image,
    }


def by_subject(client: TestClient, subject: str) -> User | None:
    return run_db(client, users.get_by_subject, subject=subject)


def test_webhook_drops_a_non_http_avatar(hook_client: TestClient) -> None:
    event = user_event(
        "user.created", "user_js", **profile("js@example.org", "J", "S", "javascript:alert(1)")
    )
    response = hook_client.post(URL, **signed(event))
    assert response.status_code == 200, response.text
    user = by_subject(hook_client, "user_js")
    assert user is not None and user.email == "js@example.org" and user.avatar_url is None


def test_created_updated_deleted_flow(hook_client: TestClient) -> None:
    created = user_event(
        "user.created",
        "user_abc",
        **profile("Ada@Example.org", "Ada", "Lovelace", "https://img.clerk.com/ada.png"),
    )
    response = hook_client.post(URL, **signed(created))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    user = by_subject(hook_client, "user_abc")
    assert user is not None and str(user.id) == response.json()["user_id"]
    assert (user.email, user.name, user.avatar_url) == (
        "ada@example.org",
        "Ada Lovelace",
        "https://img.clerk.com/ada.png",
    )

    # A redelivery (same message) changes nothing and makes no second user.
    again = hook_client.post(URL, **signed(created, msg_id="msg_same"))
    assert again.status_code == 200 and again.json()["user_id"] == str(user.id)

    updated = user_event("user.updated", "user_abc", **profile("ada@new.example.org", "Ada", "K."))
    response = hook_client.post(URL, **signed(updated))
    assert response.status_code == 200 and response.json()["user_id"] == str(user.id)
    user = by_subject(hook_client, "user_abc")
    assert user is not None
    assert (user.email, user.name, user.avatar_url) == ("ada@new.example.org", "Ada K.", None)

    # Clerk's session token for this user resolves to the synced row.
    exp = datetime.now(UTC) + timedelta(minutes=5)
    secret = hook_client.app.state.settings.secret  # type: ignore[attr-defined]
    token = jwt.encode({"sub": "user_abc", "exp": exp}, secret)
    me = hook_client.get("/api/auth/me", headers=auth_headers(token))
    assert me.status_code == 200 and me.json()["email"] == "ada@new.example.org"

    deleted = user_event("user.deleted", "user_abc", deleted=True)
    for _ in range(2):  # idempotent
        response = hook_client.post(URL, **signed(deleted))
        assert response.status_code == 200 and response.json()["status"] == "ok"
    user = by_subject(hook_client, "user_abc")
    assert user is not None and user.is_active is False
    assert (user.email, user.name, user.avatar_url) == (None, None, None)
    assert_error(hook_client.get("/api/auth/me", headers=auth_headers(token)), 403)

    # A late update does not bring the personal data back.
    hook_client.post(URL, **signed(updated))
    user = by_subject(hook_client, "user_abc")
    assert user is not None and user.email is None and user.is_active is False


def test_email_of_another_account_is_not_taken_over(hook_client: TestClient) -> None:
    registered, _ = register_user(hook_client, "owner@example.org")
    event = user_event("user.created", "user_dup", **profile("owner@example.org", "Eve", ""))
    response = hook_client.post(URL, **signed(event))
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] != registered["id"]
    user = by_subject(hook_client, "user_dup")
    assert user is not None and user.email is None and user.name == "Eve"


def test_unknown_events_and_users_are_ignored(hook_client: TestClient) -> None:
    for event in (
        {"type": "session.created", "data": {"id": "sess_1"}},
        user_event("user.deleted", "user_never_seen", deleted=True),
    ):
        response = hook_client.post(URL, **signed(event))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ignored"
    assert by_subject(hook_client, "user_never_seen") is None


def test_bad_signatures_are_400(hook_client: TestClient) -> None:
    event = user_event("user.created", "user_bad", **profile("bad@example.org", "B", "C"))
    good = signed(event)

    wrong_secret = signed(event, secret="whsec_" + base64.b64encode(b"x" * 32).decode())
    tampered = dict(good, content=good["content"].replace(b"bad@", b"evil@"))
    stale = signed(event, at=datetime.now(UTC) - timedelta(minutes=10))
    future = signed(event, at=datetime.now(UTC) + timedelta(minutes=10))
    missing = dict(good, headers={"Content-Type": "application/json"})
    garbled = dict(good, headers=dict(good["headers"], **{"svix-signature": "garbage"}))
    not_json = signed(event)
    not_json["content"] = b"\xff\xfe"

    for name, request in {
        "wrong secret": wrong_secret,
        "tampered body": tampered,
        "replayed old timestamp": stale,
        "timestamp from the future": future,
        "missing headers": missing,
        "garbled signature header": garbled,
        "body not UTF-8": not_json,
    }.items():
        response = hook_client.post(URL, **request)
        assert response.status_code == 400, f"{name}: {response.text}"
        assert response.json()["status"] == "error"
    assert by_subject(hook_client, "user_bad") is None

    # The control: the untouched request is accepted.
    assert hook_client.post(URL, **good).status_code == 200


def test_signed_payload_that_is_not_an_event_is_400(hook_client: TestClient) -> None:
    request = signed({"type": "user.created", "data": "not an object"})
    assert_error(hook_client.post(URL, **request), 400)


def test_not_configured_is_503(client: TestClient) -> None:
    event = user_event("user.created", "user_x", **profile("x@example.org", "X", "Y"))
    error = assert_error(client.post(URL, **signed(event)), 503)
    assert "CLERK_WEBHOOK_SECRET" in error["message"]


def test_deleted_user_is_disconnected_from_live_sockets(hook_client: TestClient) -> None:
    """Clerk's `user.deleted` closes the user's open sockets with 4403 (issue 18, item 5)."""
    created = user_event("user.created", "user_live", **profile("live@example.org", "Li", "Ve"))
    response = hook_client.post(URL, **signed(created))
    assert response.status_code == 200, response.text
    user_id = uuid.UUID(response.json()["user_id"])
    exp = datetime.now(UTC) + timedelta(minutes=5)
    secret = hook_client.app.state.settings.secret  # type: ignore[attr-defined]
    token = jwt.encode({"sub": "user_live", "exp": exp}, secret)

    async def insert_job(session: Any) -> uuid.UUID:
        # A row alone: no queue message, so it stays queued and its socket stays open.
        job = Job(
            kind="test.never", params={}, owner_id=user_id, status=JobStatus.queued,
            progress=0.0, attempts=0, max_attempts=1, cancel_requested=False,
        )  # fmt: skip
        session.add(job)
        await session.commit()
        return job.id

    job_id = run_db(hook_client, insert_job)
    with hook_client.websocket_connect(f"/api/jobs/{job_id}/events?token={token}") as ws:
        assert ws.receive_json()["status"] == "queued"
        deleted = user_event("user.deleted", "user_live", deleted=True)
        assert hook_client.post(URL, **signed(deleted)).status_code == 200
        assert close_code_within(ws) == 4403


def test_admin_rights_follow_public_metadata(hook_client: TestClient) -> None:
    base = profile("boss@example.org", "Bo", "Ss")
    for metadata, expected in (
        ({"isAdmin": True}, True),
        (None, True),  # silent: unchanged
        ({}, False),
    ):
        extra = {} if metadata is None else {"public_metadata": metadata}
        event = user_event("user.updated", "user_boss", **base, **extra)
        assert hook_client.post(URL, **signed(event)).status_code == 200
        user = by_subject(hook_client, "user_boss")
        assert user is not None and user.is_admin is expected, metadata
    forged = user_event("user.updated", "user_boss", **base, unsafe_metadata={"isAdmin": True})
    hook_client.post(URL, **signed(forged))
    user = by_subject(hook_client, "user_boss")
    assert user is not None and user.is_admin is False
