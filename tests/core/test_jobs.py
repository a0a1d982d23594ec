"""Durable jobs: the runtime on the real queue (SqliteHuey or RedisHuey) and `/api/jobs`."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from starlette.websockets import WebSocketDisconnect

from tests.builders import auth_headers, close_code_within, register_user, run_db
from tests.conftest import truncate_all
from worldbase.core import users
from worldbase.core.db import Database, utcnow
from worldbase.core.errors import BadInput, Conflict, NotFound
from worldbase.core.job_recovery import LOST_MESSAGE
from worldbase.core.jobs import JobContext, JobRuntime, job_handler
from worldbase.core.migrate import upgrade_head
from worldbase.core.models import Job, JobStatus, User
from worldbase.core.realtime import Hub, create_hub
from worldbase.core.storage_backends import create_storage
from worldbase.settings import Settings

# Test sessions running side by side on one Redis must not consume each other's jobs.
NAMESPACE = f"worldbase-test-{os.getpid()}"

# --- Test handlers (the registry is global; these kinds exist only in tests) -------------------


@job_handler("test.echo")
async def _echo(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    await ctx.progress(0.5, "half way")
    return {"echo": params, "attempt": ctx.attempt}


@job_handler("test.fail")
async def _fail(ctx: JobContext, params: dict[str, Any]) -> None:
    raise RuntimeError("boom: secret internals")


@job_handler("test.flaky")
async def _flaky(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    if ctx.attempt == 1:
        raise ConnectionError("first attempt fails")
    return {"attempt": ctx.attempt}


@job_handler("test.bad")
async def _bad(ctx: JobContext, params: dict[str, Any]) -> None:
    raise BadInput("row 3: no geometry")


@job_handler("test.steps")
async def _steps(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    steps = int(params.get("steps", 1000))
    for step in range(steps):
        await ctx.progress(step / steps, f"step {step}")
        await asyncio.sleep(float(params.get("delay", 0.05)))
    return {"steps": steps}


@job_handler("test.sleep")
async def _sleep(ctx: JobContext, params: dict[str, Any]) -> None:
    await asyncio.sleep(float(params["seconds"]))  # never reports progress


@job_handler("test.where")
async def _where(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    await ctx.progress(0.5, "in the worker")
    return {"pid": os.getpid()}


# --- Helpers --------------------------------------------------------------------------------------


async def wait_for_job(
    runtime: JobRuntime,
    job_id: uuid.UUID,
    until: Callable[[Job], bool] = lambda job: JobStatus(job.status).finished,
    timeout: float = 15.0,
) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = await runtime.get(job_id)
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job stuck: {job.status} {job.progress} {job.message}")
        await asyncio.sleep(0.05)


class Runtimes:
    """Starts runtimes on the same settings (a restart is a new runtime); stops them all."""

    def __init__(self, settings: Settings, hub: Hub):
        self.settings = settings
        self.hub = hub
        self.db = Database(settings)
        self.started: list[JobRuntime] = []

    async def start(self, *, consumer: bool = True) -> JobRuntime:
        settings = self.settings.model_copy(
            update={"worldbase_inline_worker": consumer, "worldbase_namespace": NAMESPACE}
        )
        runtime = JobRuntime(settings, hub=self.hub, storage=create_storage(settings), db=self.db)
        runtime.poll_seconds = 0.2
        await runtime.start()
        self.started.append(runtime)
        return runtime

    async def stop(self, runtime: JobRuntime) -> None:
        await runtime.stop()
        self.started.remove(runtime)


@pytest.fixture
async def runtimes(settings: Settings) -> AsyncIterator[Runtimes]:
    if settings.is_sqlite:
        await asyncio.to_thread(upgrade_head, settings)
    hub = create_hub(settings.model_copy(update={"worldbase_namespace": NAMESPACE}))
    await hub.start()
    pool = Runtimes(settings, hub)
    try:
        yield pool
    finally:
        for runtime in list(pool.started):
            await runtime.stop()
        await hub.stop()
        await pool.db.dispose()


async def make_user(db: Database) -> uuid.UUID:
    async with db.sessionmaker() as session:
        user = User(email=f"u-{uuid.uuid4().hex[:10]}@example.org")
        session.add(user)
        await session.commit()
        return user.id


# --- Running jobs ---------------------------------------------------------------------------------


async def test_job_succeeds_with_result_and_progress_events(runtimes: Runtimes) -> None:
    runtime = await runtimes.start()
    owner = await make_user(runtimes.db)
    subscription = runtimes.hub.subscribe(f"user:{owner}")
    await subscription.ready()

    job = await runtime.enqueue(kind="test.echo", params={"a": [1, 2]}, owner_id=owner)
    assert job.status == JobStatus.queued
    done = await wait_for_job(runtime, job.id)

    assert done.status == JobStatus.succeeded
    assert done.result == {"echo": {"a": [1, 2]}, "attempt": 1}
    assert done.progress == 1.0 and done.attempts == 1 and done.error is None
    assert done.started_at is not None and done.finished_at is not None
    events: list[dict[str, Any]] = []
    while not events or events[-1]["status"] != "succeeded":
        events.append(await asyncio.wait_for(anext(subscription), 5))
    subscription.close()
    assert [e["status"] for e in events] == ["queued", "running", "running", "succeeded"]
    assert events[2] == {
        "type": "job",
        "id": str(job.id),
        "kind": "test.echo",
        "status": "running",
        "progress": 0.5,
        "message": "half way",
    }


async def test_job_failure_is_retried_then_failed_without_a_trace(runtimes: Runtimes) -> None:
    runtime = await runtimes.start()
    job = await runtime.enqueue(kind="test.fail", params={}, max_attempts=2)
    done = await wait_for_job(runtime, job.id)
    assert done.status == JobStatus.failed
    assert done.attempts == 2
    assert done.error is not None and "RuntimeError" in done.error
    assert "secret internals" not in done.error and "Traceback" not in done.error


async def test_transient_failure_succeeds_on_retry(runtimes: Runtimes) -> None:
    runtime = await runtimes.start()
    job = await runtime.enqueue(kind="test.flaky", params={})
    done = await wait_for_job(runtime, job.id)
    assert done.status == JobStatus.succeeded
    assert done.attempts == 2 and done.result == {"attempt": 2}


async def test_domain_error_fails_at_once(runtimes: Runtimes) -> None:
    runtime = await runtimes.start()
    job = await runtime.enqueue(kind="test.bad", params={}, max_attempts=3)
    done = await wait_for_job(runtime, job.id)
    assert done.status == JobStatus.failed
    assert done.attempts == 1 and done.error == "row 3: no geometry"


async def test_enqueue_rejects_unknown_kind_and_bad_params(runtimes: Runtimes) -> None:
    runtime = await runtimes.start(consumer=False)
    with pytest.raises(BadInput):
        await runtime.enqueue(kind="no.such.kind", params={})
    with pytest.raises(BadInput):
        await runtime.enqueue(kind="test.echo", params={"x": object()})
    with pytest.raises(BadInput):
        await runtime.enqueue(kind="test.echo", params={}, max_attempts=0)
    with pytest.raises(NotFound):
        await runtime.get(uuid.uuid4())
    with pytest.raises(NotFound):
        await runtime.cancel(uuid.uuid4())


# --- Cancelling -----------------------------------------------------------------------------------


async def test_cancel_queued_job_is_immediate_and_never_runs(runtimes: Runtimes) -> None:
    producer = await runtimes.start(consumer=False)
    job = await producer.enqueue(kind="test.echo", params={})
    cancelled = await producer.cancel(job.id)
    assert cancelled.status == JobStatus.cancelled and cancelled.finished_at is not None

    consumer = await runtimes.start()
    later = await consumer.enqueue(kind="test.echo", params={})
    assert (await wait_for_job(consumer, later.id)).status == JobStatus.succeeded
    again = await consumer.get(job.id)
    assert again.status == JobStatus.cancelled and again.attempts == 0
    with pytest.raises(Conflict):
        await consumer.cancel(job.id)


async def test_cancel_running_job_stops_it_at_next_progress(runtimes: Runtimes) -> None:
    runtime = await runtimes.start()
    job = await runtime.enqueue(kind="test.steps", params={"steps": 1000})
    await wait_for_job(runtime, job.id, lambda j: j.progress > 0)
    requested = await runtime.cancel(job.id)
    assert requested.status in (JobStatus.running, JobStatus.cancelled)
    done = await wait_for_job(runtime, job.id, timeout=5)
    assert done.status == JobStatus.cancelled
    assert done.progress < 0.5


async def test_cancel_reaches_a_handler_that_never_reports(runtimes: Runtimes) -> None:
    runtime = await runtimes.start()
    job = await runtime.enqueue(kind="test.sleep", params={"seconds": 60})
    await wait_for_job(runtime, job.id, lambda j: j.status == JobStatus.running)
    await runtime.cancel(job.id)
    done = await wait_for_job(runtime, job.id, timeout=5)
    assert done.status == JobStatus.cancelled


async def test_cancel_finished_job_conflicts(runtimes: Runtimes) -> None:
    runtime = await runtimes.start()
    job = await runtime.enqueue(kind="test.echo", params={})
    await wait_for_job(runtime, job.id)
    with pytest.raises(Conflict):
        await runtime.cancel(job.id)


# --- Durability -----------------------------------------------------------------------------------


async def test_queued_job_survives_a_restart(runtimes: Runtimes) -> None:
    producer = await runtimes.start(consumer=False)
    job = await producer.enqueue(kind="test.echo", params={"n": 1})
    await asyncio.sleep(0.3)
    assert (await producer.get(job.id)).status == JobStatus.queued
    await runtimes.stop(producer)

    restarted = await runtimes.start()
    done = await wait_for_job(restarted, job.id)
    assert done.status == JobStatus.succeeded and done.result == {
        "echo": {"n": 1},
        "attempt": 1,
    }


async def test_shutdown_interrupts_and_the_job_resumes(runtimes: Runtimes) -> None:
    runtime = await runtimes.start()
    job = await runtime.enqueue(kind="test.steps", params={"steps": 20, "delay": 0.05})
    await wait_for_job(runtime, job.id, lambda j: j.progress > 0)
    started = time.monotonic()
    await runtimes.stop(runtime)
    assert time.monotonic() - started < 5
    paused = await runtime.get(job.id)
    assert paused.status == JobStatus.queued and paused.attempts == 0

    resumed = await runtimes.start()
    done = await wait_for_job(resumed, job.id)
    assert done.status == JobStatus.succeeded and done.attempts == 1


async def test_worker_process_runs_jobs_and_stops_on_sigint(
    runtimes: Runtimes, tmp_path: Path
) -> None:
    """`worldbase worker` (run_worker) in its own process, on the same queue and database."""
    settings = runtimes.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORLDBASE_", "DATABASE_"))}
    env.update(
        WORLDBASE_DATA_DIR=str(settings.data_dir),
        WORLDBASE_NAMESPACE=NAMESPACE,
        WORLDBASE_APPS="",
        JWT_SECRET=settings.secret,
        STORAGE_BACKEND="local",
        **({"DATABASE_URL": settings.database_url} if settings.database_url else {}),
        **({"REDIS_URL": settings.redis_url} if settings.redis_url else {}),
    )
    code = (
        "import tests.core.test_jobs\n"  # registers the test handlers, as an app's jobs.py would
        "from worldbase.core.jobs import run_worker\n"
        "from worldbase.settings import Settings\n"
        "run_worker(Settings(_env_file=None))\n"
    )
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[2], stdout=log, stderr=log
    )
    try:
        producer = await runtimes.start(consumer=False)
        owner = await make_user(runtimes.db)
        subscription = runtimes.hub.subscribe(f"user:{owner}")
        await subscription.ready()
        job = await producer.enqueue(kind="test.where", params={}, owner_id=owner)
        done = await wait_for_job(producer, job.id, timeout=30)
        assert done.status == JobStatus.succeeded, (tmp_path / "worker.log").read_text()
        assert done.result == {"pid": proc.pid}
        if settings.redis_url:  # the worker's events reach this process through Redis
            statuses: list[str] = []
            while not statuses or statuses[-1] != "succeeded":
                statuses.append((await next_event(subscription))["status"])
            assert statuses == ["queued", "running", "running", "succeeded"]
        subscription.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=15) == 0, (tmp_path / "worker.log").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


async def next_event(subscription: Any, timeout: float = 5.0) -> dict[str, Any]:
    event: dict[str, Any] = await asyncio.wait_for(anext(subscription), timeout)
    return event


async def _insert_running(db: Database, *, attempts: int, heartbeat_age: timedelta) -> uuid.UUID:
    async with db.sessionmaker() as session:
        job = Job(
            kind="test.echo",
            params={"recovered": True},
            status=JobStatus.running,
            progress=0.3,
            attempts=attempts,
            max_attempts=2,
            cancel_requested=False,
            started_at=utcnow() - heartbeat_age,
            heartbeat_at=utcnow() - heartbeat_age,
        )
        session.add(job)
        await session.commit()
        return job.id


def _drop_queue_message(runtime: JobRuntime, job_id: uuid.UUID) -> None:
    """Lose one job's message from the real Huey queue, as a crash between the row's commit and
    the queue write (or Huey giving up its retries before the claim) would."""
    storage = runtime.huey.storage
    kept = []
    for data in storage.enqueued_items():
        message = runtime.huey.serializer.deserialize(data)
        if not (message.args and message.args[0] == str(job_id)):
            kept.append(data)
    storage.flush_queue()
    for data in kept:
        storage.enqueue(data)
    assert str(job_id) not in runtime._waiting_ids()


async def test_queued_job_whose_task_was_lost_is_requeued_once_then_failed(
    runtimes: Runtimes,
) -> None:
    runtimes.settings = runtimes.settings.model_copy(update={"worldbase_job_queued_grace": 0.3})
    producer = await runtimes.start(consumer=False)
    lost = await producer.enqueue(kind="test.echo", params={"n": 1})
    lost_twice = await producer.enqueue(kind="test.echo", params={"n": 2})
    backlog = await producer.enqueue(kind="test.echo", params={"n": 3})
    _drop_queue_message(producer, lost.id)
    _drop_queue_message(producer, lost_twice.id)
    await asyncio.sleep(0.4)
    await producer._recover(producer.db, every_running=False, in_worker=False)

    for job_id in (lost.id, lost_twice.id):
        job = await producer.get(job_id)
        assert job.status == JobStatus.queued and job.message == LOST_MESSAGE
        assert str(job_id) in producer._waiting_ids()  # re-queued
    assert (await producer.get(backlog.id)).message is None  # a message waits: left alone

    _drop_queue_message(producer, lost_twice.id)  # lost again
    await asyncio.sleep(0.4)
    await producer._recover(producer.db, every_running=False, in_worker=False)
    failed = await producer.get(lost_twice.id)
    assert failed.status == JobStatus.failed and failed.finished_at is not None
    assert failed.error == "never started: its queue message was lost twice"

    consumer = await runtimes.start()
    for job_id in (lost.id, backlog.id):
        done = await wait_for_job(consumer, job_id)
        assert done.status == JobStatus.succeeded


async def test_lost_queued_job_is_recovered_at_start_up(runtimes: Runtimes) -> None:
    """A restart finds a queued row with no message (the process died before queueing it)."""
    runtimes.settings = runtimes.settings.model_copy(update={"worldbase_job_queued_grace": 0.3})
    producer = await runtimes.start(consumer=False)
    job = await producer.enqueue(kind="test.echo", params={})
    _drop_queue_message(producer, job.id)
    await runtimes.stop(producer)
    await asyncio.sleep(0.4)
    runtime = await runtimes.start()
    done = await wait_for_job(runtime, job.id)
    assert done.status == JobStatus.succeeded and done.attempts == 1


async def test_crashed_job_is_retried_or_failed(runtimes: Runtimes) -> None:
    stale = timedelta(hours=1)
    retry = await _insert_running(runtimes.db, attempts=1, heartbeat_age=stale)
    give_up = await _insert_running(runtimes.db, attempts=2, heartbeat_age=stale)

    runtime = await runtimes.start()
    retried = await wait_for_job(runtime, retry)
    assert retried.status == JobStatus.succeeded and retried.attempts == 2
    failed = await runtime.get(give_up)
    assert failed.status == JobStatus.failed and failed.error == "interrupted"
    assert failed.finished_at is not None


async def test_fresh_running_job_is_recovered_only_by_the_sole_consumer(
    runtimes: Runtimes,
) -> None:
    job_id = await _insert_running(runtimes.db, attempts=0, heartbeat_age=timedelta(seconds=1))
    runtime = await runtimes.start()
    if runtimes.settings.redis_url:
        # Other workers may own it: only a stale heartbeat proves it dead.
        await asyncio.sleep(0.5)
        assert (await runtime.get(job_id)).status == JobStatus.running
        async with runtimes.db.sessionmaker() as session:
            await session.execute(update(Job).where(Job.id == job_id).values(status="failed"))
            await session.commit()
    else:
        done = await wait_for_job(runtime, job_id)
        assert done.status == JobStatus.succeeded and done.attempts == 1


async def test_list_filters_and_pages(runtimes: Runtimes) -> None:
    runtime = await runtimes.start(consumer=False)
    owner = await make_user(runtimes.db)
    ids = [
        (await runtime.enqueue(kind="test.echo", params={}, owner_id=owner)).id for _ in range(3)
    ]
    await runtime.enqueue(kind="test.fail", params={}, owner_id=owner)
    await runtime.cancel(ids[0])

    items, total = await runtime.list(owner_id=owner, kind="test.echo", limit=2)
    assert total == 3 and len(items) == 2
    items, total = await runtime.list(owner_id=owner, status=JobStatus.cancelled)
    assert total == 1 and items[0].id == ids[0]
    _, total = await runtime.list(owner_id=owner, limit=2, offset=2)
    assert total == 4


# --- The API --------------------------------------------------------------------------------------


def _enqueue(client: TestClient, kind: str, owner_id: str | None, **params: Any) -> str:
    jobs: JobRuntime = client.app.state.services.jobs  # type: ignore[attr-defined]
    call = functools.partial(
        jobs.enqueue, kind=kind, params=params, owner_id=uuid.UUID(owner_id) if owner_id else None
    )
    return str(client.portal.call(call).id)  # type: ignore[union-attr]


def _wait_status(client: TestClient, job_id: str, token: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        body = client.get(f"/api/jobs/{job_id}", headers=auth_headers(token)).json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


@pytest.fixture
def client(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    """The conftest `client`, on this session's own job queue (and a login limit that
    sessions sharing the Redis cannot exhaust for each other)."""
    settings = make_settings(worldbase_namespace=NAMESPACE, login_rate_limit="1000/minute")
    client = app_factory(settings)
    client.portal.call(truncate_all, client.app.state.services)  # type: ignore[attr-defined,union-attr]
    return client


@pytest.fixture
def people(client: TestClient) -> Iterator[dict[str, tuple[dict[str, Any], str]]]:
    yield {
        "owner": register_user(client),
        "other": register_user(client),
        "admin": register_user(client, admin=True),
    }


def _assert_error(response: Any, code: int) -> None:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["status"] == "error" and body["code"] == code and body["message"]


def test_api_get_job_authorization(client: TestClient, people: dict[str, Any]) -> None:
    owner, token = people["owner"]
    job_id = _enqueue(client, "test.echo", owner["id"], x=1)

    body = _wait_status(client, job_id, token, {"succeeded"})
    assert body["id"] == job_id and body["kind"] == "test.echo" and body["owner_id"] == owner["id"]
    assert body["result"] == {"echo": {"x": 1}, "attempt": 1} and body["progress"] == 1.0

    other = client.get(f"/api/jobs/{job_id}", headers=auth_headers(people["other"][1]))
    unknown = client.get(f"/api/jobs/{uuid.uuid4()}", headers=auth_headers(token))
    _assert_error(other, 404)
    _assert_error(unknown, 404)
    assert other.json() == unknown.json()  # existence is not revealed
    _assert_error(client.get(f"/api/jobs/{job_id}"), 401)
    admin = client.get(f"/api/jobs/{job_id}", headers=auth_headers(people["admin"][1]))
    assert admin.status_code == 200 and admin.json()["id"] == job_id
    bad = client.get("/api/jobs/not-a-uuid", headers=auth_headers(token))
    _assert_error(bad, 422)
    assert bad.json()["detail"][0]["loc"] == ["path", "job_id"]


def test_api_cancel_authorization_and_conflict(client: TestClient, people: dict[str, Any]) -> None:
    owner, token = people["owner"]
    job_id = _enqueue(client, "test.steps", owner["id"])
    _wait_status(client, job_id, token, {"running"})

    _assert_error(client.post(f"/api/jobs/{job_id}/cancel"), 401)
    other = client.post(f"/api/jobs/{job_id}/cancel", headers=auth_headers(people["other"][1]))
    _assert_error(other, 404)
    response = client.post(f"/api/jobs/{job_id}/cancel", headers=auth_headers(token))
    assert response.status_code == 200, response.text
    assert response.json()["cancel_requested"] or response.json()["status"] == "cancelled"
    assert (
        _wait_status(client, job_id, token, {"cancelled", "succeeded", "failed"})["status"]
        == "cancelled"
    )
    _assert_error(client.post(f"/api/jobs/{job_id}/cancel", headers=auth_headers(token)), 409)

    # An admin may cancel anyone's job.
    second = _enqueue(client, "test.steps", owner["id"])
    admin = client.post(f"/api/jobs/{second}/cancel", headers=auth_headers(people["admin"][1]))
    assert admin.status_code == 200, admin.text
    assert _wait_status(client, second, token, {"cancelled"})["status"] == "cancelled"


def test_api_list_jobs(client: TestClient, people: dict[str, Any]) -> None:
    owner, token = people["owner"]
    other, other_token = people["other"]
    mine = {_enqueue(client, "test.echo", owner["id"]) for _ in range(3)}
    theirs = _enqueue(client, "test.bad", other["id"])
    for job_id in mine:
        _wait_status(client, job_id, token, {"succeeded"})
    _wait_status(client, theirs, other_token, {"failed"})

    page = client.get("/api/jobs", params={"limit": 2}, headers=auth_headers(token)).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert len(page["items"]) == 2 and {i["id"] for i in page["items"]} <= mine
    rest = client.get("/api/jobs?limit=2&offset=2", headers=auth_headers(token)).json()
    assert len(rest["items"]) == 1
    failed = client.get("/api/jobs?status=failed", headers=auth_headers(other_token)).json()
    assert [i["id"] for i in failed["items"]] == [theirs]
    by_kind = client.get("/api/jobs?kind=test.bad", headers=auth_headers(token)).json()
    assert by_kind["total"] == 0

    admin_token = people["admin"][1]
    everyone = client.get("/api/jobs?all=true&limit=200", headers=auth_headers(admin_token))
    assert {i["id"] for i in everyone.json()["items"]} >= mine | {theirs}
    _assert_error(client.get("/api/jobs?all=true", headers=auth_headers(token)), 403)
    _assert_error(client.get("/api/jobs"), 401)
    for query in ("limit=0", "limit=201", "offset=-1", "status=bogus"):
        _assert_error(client.get(f"/api/jobs?{query}", headers=auth_headers(token)), 422)


def test_api_job_events_websocket(client: TestClient, people: dict[str, Any]) -> None:
    owner, token = people["owner"]
    job_id = _enqueue(client, "test.steps", owner["id"], steps=1000, delay=0.02)
    _wait_status(client, job_id, token, {"running"})

    with client.websocket_connect(f"/api/jobs/{job_id}/events?token={token}") as ws:
        first = ws.receive_json()
        assert first["type"] == "job" and first["id"] == job_id and first["status"] == "running"
        # Events already in flight when the state was read may follow it (the claim's).
        progress = ws.receive_json()
        if progress["message"] is None:
            progress = ws.receive_json()
        assert progress["status"] == "running" and progress["message"].startswith("step")
        client.post(f"/api/jobs/{job_id}/cancel", headers=auth_headers(token))
        events = [ws.receive_json()]
        while events[-1]["status"] != "cancelled":
            events.append(ws.receive_json())
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000

    # A finished job: its state, then the socket closes.
    with client.websocket_connect(f"/api/jobs/{job_id}/events?token={token}") as ws:
        assert ws.receive_json()["status"] == "cancelled"
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()


@pytest.mark.parametrize(
    ("who", "code"), [("nobody", 4401), ("garbage", 4401), ("other", 4404), ("unknown", 4404)]
)
def test_api_job_events_websocket_rejects(
    client: TestClient, people: dict[str, Any], who: str, code: int
) -> None:
    owner, token = people["owner"]
    job_id = _enqueue(client, "test.echo", owner["id"])
    url = {
        "nobody": f"/api/jobs/{job_id}/events",
        "garbage": f"/api/jobs/{job_id}/events?token=not.a.jwt",
        "other": f"/api/jobs/{job_id}/events?token={people['other'][1]}",
        "unknown": f"/api/jobs/{uuid.uuid4()}/events?token={token}",
    }[who]
    with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == code


@pytest.mark.parametrize("change", ["deactivate", "delete", "demote admin"])
def test_api_job_events_websocket_closes_when_the_account_loses_access(
    client: TestClient, people: dict[str, Any], change: str
) -> None:
    """A job's socket re-checks its user: disabled, deleted or no longer an admin (watching
    someone else's job) closes it with 4403 within a second (issue 18, item 5)."""
    owner, token = people["owner"]
    watcher, watcher_token = people["admin"] if change == "demote admin" else people["owner"]
    job_id = _enqueue(client, "test.sleep", owner["id"], seconds=30)
    _wait_status(client, job_id, token, {"running"})
    hub = client.app.state.services.hub  # type: ignore[attr-defined]
    cache = client.app.state.services.cache  # type: ignore[attr-defined]

    async def revoke(session: Any) -> None:
        user = await users.get_or_raise(session, user_id=uuid.UUID(watcher["id"]))
        if change == "deactivate":
            await users.deactivate(session, user=user, hub=hub, cache=cache)
        elif change == "delete":
            await users.delete(session, user=user, hub=hub, cache=cache)
        else:
            await users.update(session, user=user, is_admin=False, hub=hub)

    with client.websocket_connect(f"/api/jobs/{job_id}/events?token={watcher_token}") as ws:
        snapshot = ws.receive_json()
        assert snapshot["status"] == "running"
        run_db(client, revoke)
        # With Redis, the job's own "running" event, published before the change, may reach
        # the socket after its snapshot: nothing new is delivered, then 4403.
        assert close_code_within(ws, seen=snapshot) == 4403
