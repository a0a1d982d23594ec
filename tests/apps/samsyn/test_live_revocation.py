"""Issue 18 item 5: a client that loses read access stops listening to the map at once.

Each test opens real WebSockets, revokes the access the way a user (or Clerk, or an admin)
does, and expects the close code 4403 within a second, with no event before it: neither
the change itself nor what follows (a comment's text).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import delete

from tests.apps.samsyn.conftest import Team
from tests.builders import close_code_within, run_db
from tests.core.test_realtime import _server_env, _servers
from worldbase.apps.samsyn.models import MapCollaborator
from worldbase.core import users
from worldbase.core.cache import RedisCache
from worldbase.core.db import Database
from worldbase.core.migrate import upgrade_head
from worldbase.core.realtime import RedisHub
from worldbase.settings import Settings

REVOKED = 4403


def _open(team: Team, stack: ExitStack, map_id: str, who: str) -> Any:
    token = f"?token={team.tokens[who]}" if who in team.tokens else ""
    ws = stack.enter_context(team.client.websocket_connect(f"/api/maps/{map_id}/events{token}"))
    assert ws.receive_json()["type"] == "subscribed"
    return ws


def _event(ws: Any) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = ws.receive_json()
        if event["type"] != "ping":
            return event


def _comment(team: Team, map_id: str, text: str) -> None:
    response = team.client.post(
        "/api/comments", json={"content": text, "map_id": map_id}, headers=team.as_("owner")
    )
    assert response.status_code == 201, response.text


def _user_service(team: Team, who: str, change: Callable[..., Any], **kwargs: Any) -> None:
    services = team.client.app.state.services  # type: ignore[attr-defined]

    async def call(session: Any) -> None:
        user = await users.get_or_raise(session, user_id=uuid.UUID(team.users[who]["id"]))
        await change(session, user=user, hub=services.hub, cache=services.cache, **kwargs)

    run_db(team.client, call)


def test_removed_collaborator_is_disconnected_and_the_others_hear_it(team: Team) -> None:
    map_ = team.shared_map()
    with ExitStack() as stack:
        owner, editor, viewer = (
            _open(team, stack, map_["id"], w) for w in ("owner", "editor", "viewer")
        )
        # A permission change that keeps read access keeps the socket.
        team.share(map_["id"], "viewer", "edit")
        for ws in (owner, editor, viewer):
            assert _event(ws)["type"] == "collaborator.added"
        response = team.client.delete(
            f"/api/maps/{map_['id']}/collaborators/{team.users['viewer']['id']}",
            headers=team.as_("owner"),
        )
        assert response.status_code == 204, response.text
        _comment(team, map_["id"], "not for the viewer")
        assert close_code_within(viewer) == REVOKED
        for ws in (owner, editor):
            assert _event(ws)["type"] == "collaborator.removed"
            assert _event(ws)["data"]["content"] == "not for the viewer"


def test_a_collaborator_who_leaves_is_disconnected(team: Team) -> None:
    map_ = team.shared_map()
    with ExitStack() as stack:
        editor = _open(team, stack, map_["id"], "editor")
        response = team.client.delete(
            f"/api/maps/{map_['id']}/collaborators/{team.users['editor']['id']}",
            headers=team.as_("editor"),
        )
        assert response.status_code == 204, response.text
        assert close_code_within(editor) == REVOKED


def test_map_made_private_disconnects_everyone_but_the_owner(team: Team) -> None:
    map_ = team.shared_map()
    with ExitStack() as stack:
        owner, editor, viewer = (
            _open(team, stack, map_["id"], w) for w in ("owner", "editor", "viewer")
        )
        response = team.client.put(
            f"/api/maps/{map_['id']}",
            json={"permission_level": "private"},
            headers=team.as_("owner"),
        )
        assert response.status_code == 200, response.text
        _comment(team, map_["id"], "private now")
        assert close_code_within(editor) == REVOKED
        assert close_code_within(viewer) == REVOKED
        assert _event(owner)["type"] == "map.updated"
        assert _event(owner)["data"]["content"] == "private now"


def test_public_map_no_longer_public_disconnects_anonymous_and_strangers(team: Team) -> None:
    map_ = team.shared_map(permission_level="public")
    with ExitStack() as stack:
        anonymous, stranger, viewer = (
            _open(team, stack, map_["id"], w) for w in ("anonymous", "stranger", "viewer")
        )
        response = team.client.put(
            f"/api/maps/{map_['id']}",
            json={"permission_level": "collaborators"},
            headers=team.as_("owner"),
        )
        assert response.status_code == 200, response.text
        assert close_code_within(anonymous) == REVOKED
        assert close_code_within(stranger) == REVOKED
        assert _event(viewer)["type"] == "map.updated"


def test_deleted_map_disconnects_its_listeners(team: Team) -> None:
    map_ = team.shared_map()
    with ExitStack() as stack:
        sockets = [_open(team, stack, map_["id"], w) for w in ("owner", "viewer", "admin")]
        response = team.client.delete(f"/api/maps/{map_['id']}", headers=team.as_("owner"))
        assert response.status_code == 204, response.text
        for ws in sockets:
            assert close_code_within(ws) == REVOKED


@pytest.mark.parametrize("change", ["deactivate", "disable", "delete", "demote admin"])
def test_account_changes_disconnect_the_user(team: Team, change: str) -> None:
    map_ = team.shared_map()
    who = "admin" if change == "demote admin" else "viewer"
    with ExitStack() as stack:
        ws, editor = (_open(team, stack, map_["id"], w) for w in (who, "editor"))
        if change == "deactivate":
            _user_service(team, who, users.deactivate)
        elif change == "disable":
            _user_service(team, who, users.update, is_active=False)
        elif change == "delete":
            _user_service(team, who, users.delete)
        else:
            _user_service(team, who, users.update, is_admin=False)
        _comment(team, map_["id"], "after the change")
        assert close_code_within(ws) == REVOKED
        assert _event(editor)["data"]["content"] == "after the change"


def test_unannounced_revocation_is_caught_by_the_periodic_recheck(team: Team) -> None:
    """A change that published nothing (a hub outage, a hand edit) still ends the stream."""
    team.client.app.state.services.settings.worldbase_ws_recheck_seconds = 0.3  # type: ignore[attr-defined]
    map_ = team.shared_map()
    with ExitStack() as stack:
        viewer, editor = (_open(team, stack, map_["id"], w) for w in ("viewer", "editor"))

        async def remove_quietly(session: Any) -> None:
            await session.execute(
                delete(MapCollaborator).where(
                    MapCollaborator.map_id == uuid.UUID(map_["id"]),
                    MapCollaborator.user_id == uuid.UUID(team.users["viewer"]["id"]),
                )
            )
            await session.commit()

        run_db(team.client, remove_quietly)
        assert close_code_within(viewer, seconds=1.5) == REVOKED
        _comment(team, map_["id"], "still here")
        assert _event(editor)["data"]["content"] == "still here"


# --- Across workers: two servers sharing PostgreSQL and the Redis hub ----------------------------


async def _close_code_within(ws: Any, seconds: float = 1.0) -> int:
    """The close code a `websockets` client gets within `seconds`, no event before it."""
    try:
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), seconds))
            assert event["type"] == "ping", f"received {event} instead of the close"
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return int(closed.rcvd.code)


async def test_revocation_on_one_worker_closes_sockets_on_another(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=postgres_url, worldbase_data_dir=tmp_path / "data"
    )
    await asyncio.to_thread(upgrade_head, settings)
    namespace = f"wb-revocation-{uuid.uuid4().hex[:8]}"
    base = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": "cross-worker-" + "s" * 40,
        "WORLDBASE_ENV": "test",
        "WORLDBASE_APPS": "samsyn",
        "WORLDBASE_NAMESPACE": namespace,
        "WORLDBASE_DATA_DIR": str(tmp_path / "data"),
        "WORLDBASE_INLINE_WORKER": "false",
        "LOGIN_RATE_LIMIT": "1000/minute",
        "LOG_JSON": "false",
        "STORAGE_BACKEND": "local",
    }
    envs = [_server_env(base), _server_env(base)]
    with _servers(tmp_path, envs) as (server_a, server_b):
        async with httpx.AsyncClient(base_url=f"http://{server_b}", timeout=10) as http:
            tokens, ids = {}, {}
            for who in ("owner", "viewer", "leaver"):
                response = await http.post(
                    "/api/auth/register",
                    json={"email": f"{who}-{namespace}@example.org", "password": "correct horse"},
                )
                assert response.status_code == 201, response.text
                tokens[who] = response.json()["access_token"]
                ids[who] = response.json()["user"]["id"]
            owner = {"Authorization": f"Bearer {tokens['owner']}"}
            response = await http.post(
                "/api/maps", json={"name": "Shared", "permission_level": "collaborators"},
                headers=owner,
            )  # fmt: skip
            assert response.status_code == 201, response.text
            map_id = response.json()["id"]
            for who in ("viewer", "leaver"):
                response = await http.post(
                    f"/api/maps/{map_id}/collaborators",
                    json={"user_id": ids[who], "permission": "view"},
                    headers=owner,
                )
                assert response.status_code in (200, 201), response.text

            sockets = {}
            async with contextlib.AsyncExitStack() as stack:
                for who in ("owner", "viewer", "leaver"):
                    url = f"ws://{server_a}/api/maps/{map_id}/events?token={tokens[who]}"
                    ws = await stack.enter_async_context(websockets.connect(url, open_timeout=10))
                    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "subscribed"
                    sockets[who] = ws

                # Removed on worker B: the socket on worker A closes.
                response = await http.delete(
                    f"/api/maps/{map_id}/collaborators/{ids['leaver']}", headers=owner
                )
                assert response.status_code == 204, response.text
                assert await _close_code_within(sockets["leaver"]) == REVOKED
                for who in ("owner", "viewer"):  # those who may still read hear of it
                    removed = json.loads(await asyncio.wait_for(sockets[who].recv(), 5))
                    assert removed["type"] == "collaborator.removed"

                # Disabled by a third process (Clerk's webhook, an admin's script).
                db = Database(settings, pooled=False)
                hub = RedisHub(redis_url, namespace=namespace)
                cache = RedisCache(redis_url)
                await hub.start()
                try:
                    async with db.sessionmaker() as session:
                        user = await users.get_or_raise(session, user_id=uuid.UUID(ids["viewer"]))
                        await users.deactivate(session, user=user, hub=hub, cache=cache)
                finally:
                    await hub.stop()
                    await cache.close()
                    await db.dispose()
                assert await _close_code_within(sockets["viewer"]) == REVOKED
