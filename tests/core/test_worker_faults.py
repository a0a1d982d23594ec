"""A job worker killed mid-job (SIGKILL) or stopped (SIGTERM): the job ends on another
worker within the stated bound, never left `running`. Real worker processes, PostgreSQL
and Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy

from tests.conftest import base_settings
from tests.core import fault_worker  # noqa: F401 - registers fault.sleep here too
from tests.core.faults import RedisServer, TcpProxy
from worldbase.core.jobs import JobRuntime
from worldbase.core.models import Job, JobStatus
from worldbase.core.realtime import MemoryHub
from worldbase.core.storage_backends import create_storage
from worldbase.settings import Settings

STALE_SECONDS = 3.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_settings(migrated_pg: str, redis_url: str, tmp_path: Path) -> Settings:
    return base_settings(
        tmp_path / "data",
        database_url=migrated_pg,
        redis_url=redis_url,
        worldbase_namespace=f"faults-{uuid.uuid4().hex[:8]}",
        worldbase_inline_worker=False,
        worldbase_job_stale_seconds=STALE_SECONDS,
        worldbase_shutdown_timeout=5.0,
    )


class Workers:
    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *, slow: bool, **overrides: str) -> subprocess.Popen[bytes]:
        s = self.settings
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "WORLDBASE_ENV": "test",
            "WORLDBASE_DATA_DIR": str(s.data_dir),
            "JWT_SECRET": s.jwt_secret or "",
            "DATABASE_URL": s.database_url or "",
            "REDIS_URL": s.redis_url or "",
            "WORLDBASE_NAMESPACE": s.worldbase_namespace,
            "WORLDBASE_PERIODIC_JOBS": "false",
            "WORLDBASE_JOB_STALE_SECONDS": str(STALE_SECONDS),
            "WORLDBASE_SHUTDOWN_TIMEOUT": "5",
            "FAULT_SLOW": "1" if slow else "0",
        } | overrides
        log = (self.folder / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.core.fault_worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def workers(worker_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(worker_settings, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
async def runtime(worker_settings: Settings) -> AsyncIterator[JobRuntime]:
    """The web side: enqueues and reads jobs, runs none."""
    hub = MemoryHub()
    await hub.start()
    jobs = JobRuntime(worker_settings, hub=hub, storage=create_storage(worker_settings))
    await jobs.start()
    try:
        yield jobs
    finally:
        await jobs.stop()
        await hub.stop()


async def _wait(runtime: JobRuntime, job_id: uuid.UUID, status: JobStatus, within: float) -> Job:
    deadline = time.monotonic() + within
    while True:
        job = await runtime.get(job_id)
        if JobStatus(job.status) == status:
            return job
        assert time.monotonic() < deadline, f"job {job.status} ({job.message}), not {status}"
        await asyncio.sleep(0.1)


async def test_worker_killed_mid_job_is_rerun_elsewhere(
    runtime: JobRuntime, workers: Workers
) -> None:
    doomed = workers.start(slow=True)
    job = await runtime.enqueue(kind="fault.sleep", params={})
    await _wait(runtime, job.id, JobStatus.running, within=20)
    doomed.send_signal(signal.SIGKILL)  # Huey's message was dequeued: only the row knows
    doomed.wait(timeout=10)
    killed_at = time.monotonic()
    survivor = workers.start(slow=False)
    done = await _wait(runtime, job.id, JobStatus.succeeded, within=1.5 * STALE_SECONDS + 10)
    # Bound: no heartbeat for STALE_SECONDS, a reaper pass every STALE_SECONDS / 2, then
    # the run itself (and the survivor's start-up, a few seconds of imports here).
    assert time.monotonic() - killed_at < 1.5 * STALE_SECONDS + 10
    assert done.result == {"pid": survivor.pid}
    assert done.attempts == 2 and done.message == "retried after interruption"


async def test_worker_sigterm_requeues_its_job_at_once(
    runtime: JobRuntime, workers: Workers
) -> None:
    stopping = workers.start(slow=True)
    job = await runtime.enqueue(kind="fault.sleep", params={})
    await _wait(runtime, job.id, JobStatus.running, within=20)
    started = time.monotonic()
    stopping.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(stopping.wait, 10) == 0
    assert time.monotonic() - started < 5  # handlers stop at once; the timeout is a cap
    # Back in the queue before the process ended, not left for the reaper.
    requeued = await runtime.get(job.id)
    assert JobStatus(requeued.status) == JobStatus.queued
    assert requeued.message == "interrupted; will resume" and requeued.attempts == 0
    survivor = workers.start(slow=False)
    done = await _wait(runtime, job.id, JobStatus.succeeded, within=20)
    assert done.result == {"pid": survivor.pid}


async def test_worker_survives_database_and_redis_restarts(
    runtime: JobRuntime, workers: Workers, migrated_pg: str, tmp_path: Path
) -> None:
    """The worker reaches PostgreSQL through a proxy that drops every connection (a
    restart) and uses a Redis of its own that is stopped and started again: its threads
    (consumers, heartbeats, reaper) live on and the jobs finish."""
    pg = sqlalchemy.make_url(migrated_pg)
    proxy = TcpProxy(pg.port or 5432)
    proxy.up()
    queue = RedisServer(tmp_path)
    queue.start()
    web = JobRuntime(
        runtime.settings.model_copy(update={"redis_url": queue.url}),
        hub=runtime.hub,
        storage=runtime.storage,
    )
    await web.start()
    try:
        worker = workers.start(
            slow=False,
            DATABASE_URL=pg.set(port=proxy.port).render_as_string(hide_password=False),
            REDIS_URL=queue.url,
        )
        job = await web.enqueue(kind="fault.sleep", params={"seconds": 4})
        await _wait(web, job.id, JobStatus.running, within=20)
        proxy.down()  # heartbeats fail meanwhile (logged), the handler runs on
        await asyncio.sleep(2)
        proxy.up()
        done = await _wait(web, job.id, JobStatus.succeeded, within=15)
        assert done.result == {"pid": worker.pid}

        queue.stop()  # the consumers' BRPOP fails until it is back
        await asyncio.sleep(2)
        queue.start()
        later = await web.enqueue(kind="fault.sleep", params={"seconds": 0.1})
        assert (await _wait(web, later.id, JobStatus.succeeded, within=20)).result == {
            "pid": worker.pid
        }
        assert worker.poll() is None
    finally:
        await web.stop()
        queue.stop()
        proxy.close()
