"""Durable jobs: a `jobs` table for state, Huey for delivery, async handlers for the work.

Apps declare their handlers in their spec (`AppSpec.jobs`, installed with `job_handler`)
and call `JobRuntime.enqueue`. The row is written first, then one Huey task `run_job(job_id)` is
queued: SqliteHuey in the data dir, or RedisHuey with `REDIS_URL`. Consumer threads run
inside `serve` (embedded) or in `worldbase worker` processes; `job_worker.py` holds what
they do. Jobs survive restarts, can be cancelled, and a crashed job is retried or failed.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from huey import RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from sqlalchemy import func, select, update

from worldbase.core import cleanup
from worldbase.core.db import Database, utcnow
from worldbase.core.errors import Conflict, NotFound, RateLimited
from worldbase.core.job_recovery import JobRecovery
from worldbase.core.job_worker import (
    Handler,
    JobCancelled,
    JobContext,
    JobInterrupted,
    JobScheduler,
    job_channels,
    job_event,
    job_handler,
    new_job,
    periodic_job,
    periodic_jobs,
    registered_kinds,
    store_job,
)
from worldbase.core.models import Job, JobStatus
from worldbase.core.outages import unavailable_part
from worldbase.core.realtime import Hub, create_hub
from worldbase.core.storage import Storage
from worldbase.core.storage_backends import create_storage
from worldbase.settings import Settings

__all__ = [
    "Handler",
    "JobCancelled",
    "JobContext",
    "JobInterrupted",
    "JobRuntime",
    "JobScheduler",
    "heavy_job_kinds",
    "job_channels",
    "job_event",
    "job_handler",
    "periodic_job",
    "registered_kinds",
    "run_worker",
]

log = logging.getLogger("worldbase.jobs")


# Job kinds that buy minutes of CPU (conversions, reconstructions, imports): an owner may
# have WORLDBASE_MAX_HEAVY_JOBS_PER_USER of them queued or running at once, all apps together.
_HEAVY_KINDS: set[str] = set()
HEAVY_RETRY_AFTER_SECONDS = 30


def heavy_job_kinds(*kinds: str) -> None:
    """Declare heavy kinds (from the apps' specs, so every web process counts every enabled
    app's heavy jobs, not only the kinds it enqueued itself)."""
    _HEAVY_KINDS.update(kinds)


class _QueueOutageFilter(logging.Filter):
    """Huey's consumer and scheduler threads log a traceback for every failed poll (several
    a second while Redis is down); one line per outage, at most once a minute, says the same."""

    MESSAGES = frozenset({"Error reading from queue", "Error reading schedule."})

    def __init__(self) -> None:
        super().__init__()
        self._last = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in self.MESSAGES or not record.exc_info:
            return True
        error = record.exc_info[1]
        if error is None or unavailable_part(error) is None:
            return True  # not an outage: keep the traceback
        now = time.monotonic()
        if now - self._last < 60:
            return False
        self._last = now
        record.msg = "job queue unavailable (%s); consumers retry until it is back"
        record.args = (str(error).splitlines()[0][:200],)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True


logging.getLogger("huey.consumer.Worker").addFilter(_QueueOutageFilter())
logging.getLogger("huey.consumer.Scheduler").addFilter(_QueueOutageFilter())


class _Consumer(Consumer):
    """Huey's consumer, optionally without signal handlers (it then runs in a thread)."""

    def __init__(
        self,
        *args: Any,
        signals: bool,
        on_stop: Callable[[], None],
        reap: Callable[[], None],
        reap_every: float,
        **kw: Any,
    ):
        self._signals = signals
        self._on_stop = on_stop
        self._reap = reap
        self._reap_every = reap_every
        self._workers_started = threading.Event()
        super().__init__(*args, **kw)
        # Both SIGTERM and Ctrl-C stop gracefully (running jobs re-queued at once, for
        # another worker); a second one of the same signal stops at once.
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._signal_actions[signum] = (False, True)

    def start(self) -> None:
        super().start()
        # Not a Huey periodic task: those run at most once a minute, and a killed worker's
        # job should be back in the queue within about 1.5 x WORLDBASE_JOB_STALE_SECONDS.
        threading.Thread(target=self._reaper, name="worldbase-job-reaper", daemon=True).start()
        self._workers_started.set()

    def _reaper(self) -> None:
        while not self.stop_flag.wait(self._reap_every):
            try:
                self._reap()
            except Exception as exc:  # database down: the next pass tries again
                log.warning("job reaper pass failed: %s", str(exc).splitlines()[0][:200])

    def _set_signal_handlers(self) -> None:
        if self._signals:
            super()._set_signal_handlers()

    def stop(self, graceful: bool = False) -> None:
        self._on_stop()  # running handlers stop at their next await and are re-queued
        # A stop right after start-up must not join worker threads that are not started yet.
        if not self._workers_started.wait(timeout=10):
            self.stop_flag.set()
            return
        super().stop(graceful=graceful)


class JobRuntime(JobRecovery):
    """Enqueue, cancel and read jobs (web loop) and execute them (consumer threads)."""

    def __init__(
        self, settings: Settings, *, hub: Hub, storage: Storage, db: Database | None = None
    ):
        self.settings = settings
        # Bounds a stop: handlers are interrupted at once, this is for their re-queueing.
        self.shutdown_timeout = settings.worldbase_shutdown_timeout
        self.hub = hub
        self.storage = storage
        self._db = db
        self._own_db = db is None
        self._stopping = threading.Event()
        self._consumer: _Consumer | None = None
        self._thread: threading.Thread | None = None
        self.huey = self._build_huey()
        # Check and insert of a heavy job in one step per process (across processes the
        # count is a bound that two simultaneous requests can overshoot by one).
        self._heavy_lock = asyncio.Lock()
        # Huey retries only what escapes _execute: infrastructure errors (database down).
        run_job = self.huey.task(name="run_job", retries=5, retry_delay=10)
        self._run_task = run_job(self._run_job)
        schedules = periodic_jobs() if settings.worldbase_periodic_jobs else {}
        for name in schedules:  # the apps' schedules (`periodic_job`)
            self.huey.periodic_task(crontab(minute="*"), name=name)(self._periodic_task(name))

    def _periodic_task(self, name: str) -> Callable[[], None]:
        def run() -> None:
            self.run_periodic(name)

        return run

    def _build_huey(self) -> Any:
        if self.settings.redis_url:
            name = self.settings.worldbase_namespace
            # BRPOP waits read_timeout seconds per poll: it bounds how long stop() takes.
            # Socket timeouts: an enqueue while Redis is frozen is a 503 in seconds, not a
            # hang (above BRPOP's wait, which must not time out itself).
            timeout = max(self.settings.worldbase_redis_timeout, 1.5)
            pool = redis.ConnectionPool.from_url(
                self.settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            return RedisHuey(name, connection_pool=pool, results=False, utc=True, read_timeout=0.5)
        path = self.settings.data_dir / "jobs.huey.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        name = self.settings.worldbase_namespace
        return SqliteHuey(name, filename=str(path), results=False, utc=True)

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.settings)
        return self._db

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        # Embedded mode has one consumer, this one: whatever is `running` was interrupted.
        only_consumer = self.settings.inline_worker and not self.settings.redis_url
        try:
            await self._recover(self.db, every_running=only_consumer, in_worker=False)
        except Exception as exc:
            # Serve anyway (health reports the database); the periodic reaper retries.
            log.error("job recovery skipped: %s", str(exc).splitlines()[0][:200])
        if self.settings.inline_worker:
            self._consumer = self._make_consumer(signals=False)
            self._thread = threading.Thread(
                target=self._consumer.run, name="worldbase-jobs", daemon=True
            )
            self._thread.start()

    async def stop(self) -> None:
        self._stopping.set()
        if self._consumer is not None:
            await asyncio.to_thread(self._stop_consumer)
        storage = self.huey.storage
        if hasattr(storage, "pool"):
            storage.pool.disconnect()
        else:
            storage.close()
        if self._own_db and self._db is not None:
            await self._db.dispose()
            self._db = None

    def _stop_consumer(self) -> None:
        assert self._consumer is not None
        self._consumer.stop(graceful=True)
        if self._thread is not None:
            self._thread.join(timeout=self.shutdown_timeout)
        self._consumer = self._thread = None

    def _make_consumer(self, *, signals: bool) -> _Consumer:
        return _Consumer(
            self.huey,
            signals=signals,
            on_stop=self._stopping.set,
            reap=self._reap,
            reap_every=self._reap_every,
            workers=self.settings.worldbase_worker_threads,
            worker_type="thread",
            # SqliteHuey is polled: keep an idle queue's pick-up delay under half a second.
            initial_delay=0.05,
            backoff=1.5,
            max_delay=0.5,
            shutdown_timeout=self.shutdown_timeout,
        )

    # --- web-side API ---------------------------------------------------------------------

    async def check_capacity(self, *, owner_id: uuid.UUID | None) -> None:
        """429 (with Retry-After) when `owner_id` already has the most heavy jobs allowed
        queued or running. Routes call it before the costly part of a request, too."""
        limit = self.settings.worldbase_max_heavy_jobs_per_user
        if owner_id is None or limit <= 0 or not _HEAVY_KINDS:
            return
        query = select(func.count(Job.id)).where(
            Job.owner_id == owner_id,
            Job.status.in_([JobStatus.queued, JobStatus.running]),
            Job.kind.in_(sorted(_HEAVY_KINDS)),
        )
        async with self.db.sessionmaker() as session:
            active = int(await session.scalar(query) or 0)
        if active >= limit:
            raise RateLimited(
                f"At most {limit} heavy jobs (uploads, imports, reconstructions) per user "
                "may be queued or running at once (WORLDBASE_MAX_HEAVY_JOBS_PER_USER); "
                "wait for one to finish",
                headers={"Retry-After": str(HEAVY_RETRY_AFTER_SECONDS)},
                detail={
                    "limit": limit,
                    "active": active,
                    "setting": "WORLDBASE_MAX_HEAVY_JOBS_PER_USER",
                },
            )

    async def enqueue(
        self,
        *,
        kind: str,
        params: dict[str, Any],
        owner_id: uuid.UUID | None = None,
        max_attempts: int = 2,
        heavy: bool = False,
    ) -> Job:
        """Record and queue a job. `heavy=True` counts it against its owner's limit of
        concurrent heavy jobs (429 past it)."""
        job = new_job(kind=kind, params=params, owner_id=owner_id, max_attempts=max_attempts)
        if heavy:
            heavy_job_kinds(kind)
            async with self._heavy_lock:
                await self.check_capacity(owner_id=owner_id)
                await store_job(self.db, job)
        else:
            await store_job(self.db, job)
        return await self.queue_job(self.db, job, in_worker=False)

    async def get(self, job_id: uuid.UUID) -> Job:
        async with self.db.sessionmaker() as session:
            job = await session.get(Job, job_id)
        if job is None:
            raise NotFound("Job not found")
        return job

    async def list(
        self,
        *,
        owner_id: uuid.UUID | None = None,
        status: JobStatus | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[Job], int]:
        """Jobs newest first; `owner_id=None` means every owner (admins)."""
        query = select(Job)
        if owner_id is not None:
            query = query.where(Job.owner_id == owner_id)
        if status is not None:
            query = query.where(Job.status == status)
        if kind is not None:
            query = query.where(Job.kind == kind)
        async with self.db.sessionmaker() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery()))
            rows = await session.scalars(
                query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
            )
            return builtins.list(rows), int(total or 0)

    async def cancel(self, job_id: uuid.UUID) -> Job:
        """Queued: cancelled now. Running: the handler is stopped, then cancelled."""
        done = await self._set(
            job_id,
            when=JobStatus.queued,
            status=JobStatus.cancelled,
            message="cancelled",
            finished_at=utcnow(),
        )
        if not done and not await self._set(
            job_id, when=JobStatus.running, cancel_requested=True, message="cancelling"
        ):
            job = await self.get(job_id)  # NotFound, or finished: a conflict
            raise Conflict(f"Job is already {JobStatus(job.status).value}")
        job = await self.get(job_id)
        if done:  # it never ran: its staged uploads go now (a running one drops them itself)
            await cleanup.delete_keys(self.storage, cleanup.staging_keys(job.params))
        await self._emit(job)
        return job

    async def _set(
        self, job_id: uuid.UUID, *, when: JobStatus | None = None, **values: Any
    ) -> bool:
        query = update(Job).where(Job.id == job_id)
        if when is not None:
            query = query.where(Job.status == when)
        async with self.db.sessionmaker() as session:
            result = await session.execute(query.values(**values))
            await session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _emit(self, job: Job) -> None:
        event = job_event(job)
        for channel in job_channels(job):
            try:
                await self.hub.publish(channel, event)
            except Exception:  # events are best effort; the table is the truth
                log.warning("could not publish %s", channel, exc_info=True)

    def _waiting_ids(self) -> set[str]:
        """Job ids of the run_job messages waiting in the queue or scheduled for a retry."""
        storage = self.huey.storage
        ids: set[str] = set()
        # Raw messages, not huey.pending(): that fails on a task this process did not register.
        for data in [*storage.enqueued_items(), *storage.scheduled_items()]:
            message = self.huey.serializer.deserialize(data)
            if message.name.rsplit(".", 1)[-1] == "run_job" and message.args:
                ids.add(str(message.args[0]))
        return ids

    def _run_job(self, job_id: str) -> None:
        """The Huey task: runs in a consumer thread."""
        if self._stopping.is_set():
            self._run_task(job_id)  # put it back for the next consumer; the row is untouched
            return
        asyncio.run(self._execute(uuid.UUID(job_id)))


def run_worker(settings: Settings) -> None:
    """`worldbase worker`: a blocking consumer (Ctrl-C / SIGTERM stop it gracefully).

    The apps' handlers must be registered first (the CLI imports their `jobs` modules).
    """
    log.info("job handlers: %s", ", ".join(registered_kinds()) or "none")
    hub = create_hub(settings)  # used only through publish_threadsafe: no start() needed
    runtime = JobRuntime(settings, hub=hub, storage=create_storage(settings))

    async def recover() -> None:
        db = Database(settings, pooled=False)
        try:
            await runtime._recover(db, every_running=False, in_worker=True)
        finally:
            await db.dispose()

    try:
        asyncio.run(recover())
    except Exception as exc:  # the periodic reaper tries again
        log.error("job recovery skipped: %s", str(exc).splitlines()[0][:200])
    runtime._make_consumer(signals=True).run()
