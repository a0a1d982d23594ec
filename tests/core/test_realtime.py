"""The realtime hub (in-process and Redis), serve_websocket, and events across processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import websockets
from fastapi import FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.builders import close_code_within
from tests.conftest import free_port, wait_for_port
from tests.core.conftest import NAMESPACE
from worldbase.core.db import Database
from worldbase.core.live_socket import WS_ACCESS_REVOKED, AccessGuard, serve_websocket
from worldbase.core.migrate import upgrade_head
from worldbase.core.models import Job, JobStatus
from worldbase.core.realtime import ACCESS_CHANGED, Hub, MemoryHub, RedisHub, SubscriberTooSlow
from worldbase.settings import Settings


async def next_event(subscription: Any, timeout: float = 5.0) -> dict[str, Any]:
    event: dict[str, Any] = await asyncio.wait_for(anext(subscription), timeout)
    return event


async def test_publish_reaches_subscribers_of_that_channel_only(hub: Hub) -> None:
    a1 = hub.subscribe("a")
    a2 = hub.subscribe("a")
    b = hub.subscribe("b")
    both = hub.subscribe("a", "b")
    for sub in (a1, a2, b, both):
        await sub.ready()

    await hub.publish("b", {"n": 1, "to": "b"})
    await hub.publish("a", {"n": 2, "to": "a", "nested": {"x": [1.5, None]}})

    assert await next_event(a1) == {"n": 2, "to": "a", "nested": {"x": [1.5, None]}}
    assert await next_event(a2) == {"n": 2, "to": "a", "nested": {"x": [1.5, None]}}
    assert await next_event(b) == {"n": 1, "to": "b"}
    assert [(await next_event(both))["n"] for _ in range(2)] == [1, 2]
    with pytest.raises(TimeoutError):
        await next_event(b, timeout=0.3)  # the event for "a" never reaches "b"


async def test_pop_ready_takes_queued_events_and_keeps_the_end(hub: Hub) -> None:
    sub = hub.subscribe("p")
    await sub.ready()
    assert sub.pop_ready() == []
    for n in range(3):
        await hub.publish("p", {"n": n})
    assert await next_event(sub) == {"n": 0}
    await asyncio.sleep(0.2)  # the Redis hub delivers through its listener task
    assert sub.pop_ready() == [{"n": 1}, {"n": 2}]
    sub.close()
    assert sub.pop_ready() == []
    with pytest.raises(StopAsyncIteration):
        await next_event(sub)  # the end marker survived pop_ready


def test_a_shared_event_is_encoded_once() -> None:
    from worldbase.core import live_socket

    event = {"type": "object.created", "object": {"id": "x"}}
    first = live_socket._encode_shared(event)
    assert first == '{"type":"object.created","object":{"id":"x"}}'
    assert live_socket._encode_shared(event) is first  # the same text, not a new encoding
    other = {"type": "object.created", "object": {"id": "x"}}
    assert live_socket._encode_shared(other) == first  # equal content, separately encoded


async def test_close_ends_iteration_and_unsubscribes(hub: Hub) -> None:
    sub = hub.subscribe("c")
    await sub.ready()
    sub.close()
    with pytest.raises(StopAsyncIteration):
        await next_event(sub)
    assert "c" not in hub._subscribers  # type: ignore[attr-defined]
    await hub.publish("c", {"after": "close"})  # nobody listens: no error
    async with hub.subscribe("c2") as scoped:
        await hub.publish("c2", {"n": 1})
        assert await next_event(scoped) == {"n": 1}
    assert scoped.closed and "c2" not in hub._subscribers  # type: ignore[attr-defined]


async def test_slow_subscriber_is_dropped_without_slowing_others(hub: Hub) -> None:
    slow = hub.subscribe("busy", max_queue=3)
    fast = hub.subscribe("busy", max_queue=100)
    await slow.ready()
    started = time.monotonic()
    for n in range(20):
        await hub.publish("busy", {"n": n})
    assert time.monotonic() - started < 2  # publishers never wait for a reader
    assert [(await next_event(fast))["n"] for _ in range(20)] == list(range(20))
    with pytest.raises(SubscriberTooSlow):
        await next_event(slow)
    assert slow.dropped
    with pytest.raises(SubscriberTooSlow):  # stays ended
        await next_event(slow)


async def test_publish_from_another_thread(hub: Hub) -> None:
    sub = hub.subscribe("threads")
    await sub.ready()

    def publish() -> None:
        for n in range(3):
            hub.publish_threadsafe("threads", {"n": n})

    worker = threading.Thread(target=publish)
    worker.start()
    worker.join()
    assert [(await next_event(sub))["n"] for _ in range(3)] == [0, 1, 2]


async def test_redis_hub_skips_foreign_payloads_and_survives_reconnects(redis_url: str) -> None:
    hub = RedisHub(redis_url, namespace=NAMESPACE, max_backoff=0.5)
    await hub.start()
    client = aioredis.Redis.from_url(redis_url)
    try:
        sub = hub.subscribe("r")
        await sub.ready()
        await client.publish(f"{NAMESPACE}:events:r", b"not json")
        await hub.publish("r", {"n": 1})
        assert await next_event(sub) == {"n": 1}

        # Drop every pub/sub connection of this hub on the server side.
        for info in await client.client_list(_type="pubsub"):
            await client.client_kill_filter(_id=info["id"])
        deadline = time.monotonic() + 10
        seen: list[dict[str, Any]] = []
        while {"n": 2} not in seen:  # events published while it reconnects are lost
            await hub.publish("r", {"n": 2})
            try:
                seen.append(await next_event(sub, timeout=0.3))
            except TimeoutError:
                assert time.monotonic() < deadline, "the hub did not reconnect"
        # Before the later events: word that some may have been missed.
        assert seen[0] == {"type": ACCESS_CHANGED, "resumed": True}
    finally:
        await client.aclose()  # type: ignore[attr-defined]
        await hub.stop()


# --- serve_websocket, through the test client ---------------------------------------------------


@pytest.fixture
def ws_app() -> Iterator[tuple[TestClient, MemoryHub]]:
    hub = MemoryHub()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        yield
        await hub.stop()

    app = FastAPI(lifespan=lifespan)

    @app.websocket("/ws/{channel}")
    async def _ws(websocket: WebSocket, channel: str, queue: int = 100) -> None:
        await websocket.accept()
        await serve_websocket(
            websocket,
            hub.subscribe(channel, max_queue=queue),
            heartbeat_seconds=0.2,
            initial={"type": "hello"},
            until=lambda event: event.get("last") is True,
        )

    with TestClient(app) as client:
        yield client, hub


def _publish(client: TestClient, hub: MemoryHub, channel: str, *events: dict[str, Any]) -> None:
    async def publish() -> None:
        for event in events:  # no await between them: the server cannot drain in between
            await hub.publish(channel, event)

    client.portal.call(publish)  # type: ignore[union-attr]


def _wait_subscribed(hub: MemoryHub, channel: str, count: int = 1) -> None:
    deadline = time.monotonic() + 5
    while len(hub._subscribers.get(channel, ())) != count:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_websocket_streams_events_pings_and_closes(ws_app: tuple[TestClient, MemoryHub]) -> None:
    client, hub = ws_app
    with client.websocket_connect("/ws/room") as ws:
        assert ws.receive_json() == {"type": "hello"}
        _wait_subscribed(hub, "room")
        assert ws.receive_json() == {"type": "ping"}  # nothing happened for 0.2 s
        _publish(client, hub, "room", {"n": 1}, {"n": 2, "last": True})
        received = [ws.receive_json() for _ in range(2)]
        assert next(e for e in received if e.get("type") != "ping") == {"n": 1}
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
        assert closed.value.code == 1000
    assert "room" not in hub._subscribers


def test_websocket_drops_a_client_that_falls_behind(ws_app: tuple[TestClient, MemoryHub]) -> None:
    client, hub = ws_app
    with client.websocket_connect("/ws/flood?queue=2") as ws:
        assert ws.receive_json() == {"type": "hello"}
        _wait_subscribed(hub, "flood")
        _publish(client, hub, "flood", *({"n": n} for n in range(10)))
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
        assert closed.value.code == 1013
    assert "flood" not in hub._subscribers


def test_websocket_client_disconnect_closes_the_subscription(
    ws_app: tuple[TestClient, MemoryHub],
) -> None:
    client, hub = ws_app
    with client.websocket_connect("/ws/gone") as ws:
        ws.receive_json()
        _wait_subscribed(hub, "gone")
    _wait_subscribed(hub, "gone", count=0)


def _guarded_app(verdicts: dict[str, bool | None], every: float) -> tuple[FastAPI, MemoryHub]:
    """A socket per channel whose guard answers `verdicts[channel]` (None: the check fails)."""
    hub = MemoryHub()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        yield
        await hub.stop()

    app = FastAPI(lifespan=lifespan)

    @app.websocket("/ws/{channel}")
    async def _ws(websocket: WebSocket, channel: str) -> None:
        async def check() -> bool:
            verdict = verdicts[channel]
            if verdict is None:
                raise ConnectionError("database down")
            return verdict

        await websocket.accept()
        guard = AccessGuard(check=check, every=every, rechecks=lambda e: e.get("sensitive") is True)
        await serve_websocket(websocket, hub.subscribe(channel), guard=guard)

    return app, hub


@pytest.mark.parametrize("trigger", ["control", "sensitive event"])
def test_guarded_websocket_rechecks_on_control_and_sensitive_events(trigger: str) -> None:
    verdicts: dict[str, bool | None] = {"room": True}
    app, hub = _guarded_app(verdicts, every=3600)
    revoke = {"type": ACCESS_CHANGED} if trigger == "control" else {"n": 3, "sensitive": True}
    with TestClient(app) as client, client.websocket_connect("/ws/room") as ws:
        _wait_subscribed(hub, "room")
        # Allowed: control events are swallowed, sensitive ones delivered.
        _publish(client, hub, "room", {"type": ACCESS_CHANGED}, {"n": 1, "sensitive": True})
        assert ws.receive_json() == {"n": 1, "sensitive": True}
        verdicts["room"] = False
        _publish(client, hub, "room", {"n": 2})  # not a trigger: still delivered
        assert ws.receive_json() == {"n": 2}
        _publish(client, hub, "room", revoke, {"n": 4})
        assert close_code_within(ws) == WS_ACCESS_REVOKED
    assert "room" not in hub._subscribers


def test_guarded_websocket_rechecks_periodically_and_fails_closed() -> None:
    verdicts: dict[str, bool | None] = {"quiet": True, "broken": True}
    app, hub = _guarded_app(verdicts, every=0.2)
    with (
        TestClient(app) as client,
        client.websocket_connect("/ws/quiet") as quiet,
        client.websocket_connect("/ws/broken") as broken,
    ):
        _wait_subscribed(hub, "quiet")
        _wait_subscribed(hub, "broken")
        time.sleep(0.5)  # a few re-checks that pass
        _publish(client, hub, "quiet", {"n": 1})
        assert quiet.receive_json() == {"n": 1}
        verdicts["quiet"], verdicts["broken"] = False, None  # nothing published
        assert close_code_within(quiet) == WS_ACCESS_REVOKED
        assert close_code_within(broken) == 1013


# --- Across processes: two real servers sharing PostgreSQL and Redis ------------------------------


def _server_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORLDBASE_", "DATABASE_"))}
    env.update(base)
    env.update(extra)
    return env


@contextlib.contextmanager
def _servers(tmp_path: Path, envs: list[dict[str, str]]) -> Iterator[list[str]]:
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for n, env in enumerate(envs):
            port = free_port()
            log = (tmp_path / f"server-{n}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "worldbase.app:create_app_from_env",
                        "--factory",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    env=env,
                    cwd=tmp_path,  # away from any .env in the checkout
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            urls.append(f"127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            try:
                wait_for_port(int(url.rsplit(":", 1)[1]), timeout=90)
            except TimeoutError:
                proc.kill()
                logs = "\n".join(p.read_text()[-2000:] for p in tmp_path.glob("server-*.log"))
                raise AssertionError(f"server did not start:\n{logs}") from None
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


async def _insert_job(settings: Settings, owner_id: str) -> uuid.UUID:
    db = Database(settings, pooled=False)
    try:
        async with db.sessionmaker() as session:
            job = Job(
                kind="cross.process",
                params={},
                owner_id=uuid.UUID(owner_id),
                status=JobStatus.queued,
                progress=0.0,
                attempts=0,
                max_attempts=1,
                cancel_requested=False,
            )
            session.add(job)  # no queue message: nothing will run it, only the cancel moves it
            await session.commit()
            return job.id
    finally:
        await db.dispose()


async def test_event_published_on_one_server_reaches_a_websocket_on_another(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=postgres_url, worldbase_data_dir=tmp_path / "data"
    )
    await asyncio.to_thread(upgrade_head, settings)
    base = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": "cross-process-" + "s" * 40,
        "WORLDBASE_ENV": "test",
        "WORLDBASE_APPS": "",
        "WORLDBASE_NAMESPACE": NAMESPACE,
        "WORLDBASE_DATA_DIR": str(tmp_path / "data"),
        "LOGIN_RATE_LIMIT": "1000/minute",
        "REGISTER_RATE_LIMIT": "1000/minute",
        "LOG_JSON": "false",
        "STORAGE_BACKEND": "local",
    }
    envs = [
        _server_env(base, WORLDBASE_INLINE_WORKER="false"),  # A: web only
        _server_env(base, WORLDBASE_INLINE_WORKER="true"),  # B: web and jobs
    ]
    with _servers(tmp_path, envs) as (server_a, server_b):
        async with httpx.AsyncClient(base_url=f"http://{server_b}", timeout=10) as http:
            email = f"cross-{uuid.uuid4().hex[:8]}@example.org"
            response = await http.post(
                "/api/auth/register", json={"email": email, "password": "correct horse battery"}
            )
            assert response.status_code == 201, response.text
            token = response.json()["access_token"]
            job_id = await _insert_job(settings, response.json()["user"]["id"])

            url = f"ws://{server_a}/api/jobs/{job_id}/events?token={token}"
            async with websockets.connect(url, open_timeout=10) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert first["id"] == str(job_id) and first["status"] == "queued"

                headers = {"Authorization": f"Bearer {token}"}
                cancel = await http.post(f"/api/jobs/{job_id}/cancel", headers=headers)
                assert cancel.status_code == 200, cancel.text

                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert event == {
                    "type": "job",
                    "id": str(job_id),
                    "kind": "cross.process",
                    "status": "cancelled",
                    "progress": 0.0,
                    "message": "cancelled",
                }
                with pytest.raises(websockets.ConnectionClosedOK):
                    await asyncio.wait_for(ws.recv(), 10)
