"""The worker side of jobs: the handler registry, `JobContext`, queueing and execution.

A consumer thread runs each job under `asyncio.run` with its own database engine, since
asyncpg connections belong to the loop that opened them. State changes are guarded
UPDATEs (`WHERE status = ... AND attempts = ...`), so a job is claimed once, a cancel
cannot be lost, and a worker that lost a job cannot overwrite it. Jobs whose worker died
or whose queue message was lost are repaired by `job_recovery`.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update

from worldbase.core import cleanup
from worldbase.core.db import Database, utcnow
from worldbase.core.errors import BadInput, DomainError
from worldbase.core.models import Job, JobStatus
from worldbase.core.outages import QUEUE, unavailable
from worldbase.core.realtime import Hub
from worldbase.core.storage import Storage
from worldbase.core.storage_backends import create_storage
from worldbase.settings import Settings

log = logging.getLogger("worldbase.jobs")

Handler = Callable[["JobContext", dict[str, Any]], Coroutine[Any, Any, dict[str, Any] | None]]
H = TypeVar("H", bound=Handler)

_HANDLERS: dict[str, Handler] = {}


def job_handler(kind: str) -> Callable[[H], H]:
    """Register an async handler `(ctx, params) -> dict | None` for a job kind."""

    def register(fn: H) -> H:
        existing = _HANDLERS.get(kind)
        if existing is not None and (existing.__module__, existing.__qualname__) != (
            fn.__module__,
            fn.__qualname__,
        ):
            raise ValueError(f"job kind {kind!r} is already handled by {existing.__qualname__}")
        _HANDLERS[kind] = fn
        return fn

    return register


def registered_kinds() -> builtins.list[str]:
    return sorted(_HANDLERS)


Periodic = Callable[["JobScheduler"], Coroutine[Any, Any, None]]
P = TypeVar("P", bound=Periodic)

_PERIODIC: dict[str, Periodic] = {}


def periodic_job(name: str) -> Callable[[P], P]:
    """Register an async `(scheduler) -> None` that the job consumers run every minute.

    Every consumer process runs its own schedule: the function must be safe to run
    concurrently (claim work with a guarded UPDATE). It usually just enqueues jobs.
    """

    def register(fn: P) -> P:
        _PERIODIC[name] = fn
        return fn

    return register


def periodic_jobs() -> dict[str, Periodic]:
    return dict(_PERIODIC)


def new_job(
    *, kind: str, params: dict[str, Any], owner_id: uuid.UUID | None, max_attempts: int
) -> Job:
    """A validated, not yet stored `queued` row (shared by every way of enqueueing)."""
    if kind not in _HANDLERS:
        raise BadInput(f"Unknown job kind {kind!r}")
    if not 1 <= max_attempts <= 20:
        raise BadInput("max_attempts must be between 1 and 20")
    try:
        params = json.loads(json.dumps(params))
    except (TypeError, ValueError) as exc:
        raise BadInput(f"Job parameters must be JSON: {exc}") from None
    return Job(
        kind=kind,
        params=params,
        owner_id=owner_id,
        max_attempts=max_attempts,
        status=JobStatus.queued,
        progress=0.0,
        attempts=0,
        cancel_requested=False,
    )


class JobCancelled(Exception):
    """Raised inside a handler (by `ctx.progress`) when the job was cancelled."""


class JobInterrupted(Exception):
    """Raised inside a handler when the worker shuts down or lost the job; it resumes later."""


def job_event(job: Job) -> dict[str, Any]:
    return {
        "type": "job",
        "id": str(job.id),
        "kind": job.kind,
        "status": JobStatus(job.status).value,
        "progress": job.progress,
        "message": job.message,
    }


def job_channels(job: Job) -> builtins.list[str]:
    channels = [f"jobs:{job.id}"]
    if job.owner_id is not None:
        channels.append(f"user:{job.owner_id}")
    return channels


class JobContext:
    """What a handler sees: its job, a database and storage on the worker's loop, progress."""

    def __init__(self, runtime: JobExecution, job: Job, db: Database):
        self.job_id: uuid.UUID = job.id
        self.kind = job.kind
        self.params: dict[str, Any] = dict(job.params or {})
        self.owner_id: uuid.UUID | None = job.owner_id
        self.attempt = job.attempts
        self.settings = runtime.settings
        self.db = db
        self._runtime = runtime
        self._storage: Storage | None = None
        self._cancelled = False
        self.stop_reason: str | None = None  # set by the watcher before it cancels the handler

    def publish(self, channel: str, event: dict[str, Any]) -> None:
        """Publish a realtime event from the handler (safe from the worker thread)."""
        self._runtime.hub.publish_threadsafe(channel, event)

    @property
    def storage(self) -> Storage:
        # Created on first use, on this loop: storage clients may be bound to their loop.
        if self._storage is None:
            self._storage = create_storage(self.settings)
        return self._storage

    @property
    def cancelled(self) -> bool:
        """Whether a cancel was seen (refreshed by progress() and the background watcher)."""
        return self._cancelled

    def _owned(self) -> Any:
        return (
            Job.id == self.job_id,
            Job.status == JobStatus.running,
            Job.attempts == self.attempt,
        )

    async def progress(self, fraction: float, message: str | None = None) -> None:
        """Record progress (0..1) and a heartbeat; raises JobCancelled after a cancel."""
        if self._runtime.stopping:
            raise JobInterrupted("worker is shutting down")
        values: dict[str, Any] = {
            "progress": min(max(float(fraction), 0.0), 1.0),
            "heartbeat_at": utcnow(),
        }
        if message is not None:
            values["message"] = message[:2000]
        async with self.db.sessionmaker() as session:
            result = await session.execute(
                update(Job)
                .where(*self._owned())
                .values(**values)
                .returning(Job.cancel_requested, Job.message)
            )
            row = result.first()
            await session.commit()
        if row is None:
            raise JobInterrupted("job is no longer owned by this worker")
        if row.cancel_requested:
            self._cancelled = True
            raise JobCancelled()
        event = {"type": "job", "id": str(self.job_id), "kind": self.kind, "status": "running"}
        event.update(progress=values["progress"], message=row.message)
        self._runtime._emit_threadsafe(event, self.owner_id)

    async def _close(self) -> None:
        if self._storage is not None:
            await self._storage.close()


class JobScheduler:
    """What a periodic function sees: a database on the consumer thread's loop, `enqueue`."""

    def __init__(self, runtime: JobExecution, db: Database):
        self.settings = runtime.settings
        self.db = db
        self._runtime = runtime

    async def enqueue(
        self,
        *,
        kind: str,
        params: dict[str, Any],
        owner_id: uuid.UUID | None = None,
        max_attempts: int = 2,
    ) -> Job:
        job = new_job(kind=kind, params=params, owner_id=owner_id, max_attempts=max_attempts)
        await store_job(self.db, job)
        return await self._runtime.queue_job(self.db, job, in_worker=True)


async def store_job(db: Database, job: Job) -> None:
    async with db.sessionmaker() as session:
        session.add(job)
        await session.commit()


class JobExecution:
    """Queues and executes jobs; `JobRecovery` repairs lost ones, `JobRuntime` adds the Huey
    queue, the consumer and the web API."""

    poll_seconds = 1.0  # how often a running job checks for a cancel

    settings: Settings
    hub: Hub
    _stopping: threading.Event
    _run_task: Callable[[str], Any]  # queues the Huey task run_job(job_id)
    _waiting_ids: Callable[[], set[str]]  # job ids with a message in the queue or its schedule
    _recovered_at = float("-inf")  # time.monotonic() of the last recovery pass

    @property
    def queued_grace(self) -> timedelta:
        return timedelta(seconds=self.settings.worldbase_job_queued_grace)

    @property
    def _stale_seconds(self) -> float:
        """A running job without a heartbeat for this long is dead (its worker was killed)."""
        return float(self.settings.worldbase_job_stale_seconds)

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self._stale_seconds)

    @property
    def heartbeat_seconds(self) -> float:
        # Three beats per stale period: one lost beat (a database blip) is not a death.
        return min(10.0, self._stale_seconds / 3)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def _emit(self, job: Job) -> None:
        raise NotImplementedError

    def _emit_threadsafe(self, event: dict[str, Any], owner_id: uuid.UUID | None) -> None:
        channels = [f"jobs:{event['id']}"] + ([f"user:{owner_id}"] if owner_id else [])
        for channel in channels:
            try:
                self.hub.publish_threadsafe(channel, event)
            except Exception:
                log.warning("could not publish %s", channel, exc_info=True)

    async def _announce(self, job: Job, *, in_worker: bool) -> None:
        if in_worker:  # a consumer thread's loop: the hub belongs to the web loop
            self._emit_threadsafe(job_event(job), job.owner_id)
        else:
            await self._emit(job)

    async def queue_job(self, db: Database, job: Job, *, in_worker: bool) -> Job:
        """Announce a stored `queued` job and queue its task: every enqueue ends here. A
        queue that refuses the task fails the job (it would never run): 503."""
        await self._announce(job, in_worker=in_worker)  # so "queued" never follows "running"
        try:
            await asyncio.to_thread(self._run_task, str(job.id))
        except Exception:
            log.exception("could not queue job %s", job.id)
            async with db.sessionmaker() as session:
                failed = {"status": JobStatus.failed, "error": "could not be queued"}
                await session.execute(
                    update(Job).where(Job.id == job.id).values(**failed, finished_at=utcnow())
                )
                await session.commit()
                fresh = await session.get(Job, job.id, populate_existing=True)
            if fresh is not None:
                await self._announce(fresh, in_worker=in_worker)
            raise unavailable(QUEUE) from None
        return job

    async def _execute(self, job_id: uuid.UUID) -> None:
        db = Database(self.settings, pooled=False)
        try:
            job = await self._claim(db, job_id)
            if job is None:
                return  # cancelled while queued, already taken, or deleted
            self._emit_threadsafe(job_event(job), job.owner_id)
            handler = _HANDLERS.get(job.kind)
            if handler is None:
                log.error("no handler for job kind %s in this worker (job %s)", job.kind, job.id)
                await self._finish(db, job, JobStatus.failed, error=f"Unknown job kind {job.kind}")
                return
            ctx = JobContext(self, job, db)
            try:
                await self._run_handler(db, job, ctx, handler)
            finally:
                await ctx._close()
        finally:
            await db.dispose()

    async def _claim(self, db: Database, job_id: uuid.UUID) -> Job | None:
        now = utcnow()
        async with db.sessionmaker() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.queued)
                .where(Job.cancel_requested.is_(False))
                .values(
                    status=JobStatus.running,
                    attempts=Job.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                    progress=0.0,
                    finished_at=None,
                )
            )
            await session.commit()
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            return await session.get(Job, job_id)

    async def _run_handler(self, db: Database, job: Job, ctx: JobContext, handler: Handler) -> None:
        task = asyncio.create_task(handler(ctx, dict(ctx.params)))
        watcher = asyncio.create_task(self._watch(db, ctx, task))
        try:
            result = await task
        except JobCancelled:
            await self._finish(db, job, JobStatus.cancelled, message="cancelled")
        except JobInterrupted:
            await self._requeue(db, job, message="interrupted; will resume", refund=True)
        except asyncio.CancelledError:
            if ctx.stop_reason == "cancel":
                await self._finish(db, job, JobStatus.cancelled, message="cancelled")
            elif ctx.stop_reason == "shutdown":
                await self._requeue(db, job, message="interrupted; will resume", refund=True)
            elif ctx.stop_reason != "lost":
                raise
        except DomainError as exc:
            # Bad input stays bad: fail at once, with the domain message.
            await self._finish(db, job, JobStatus.failed, error=exc.message[:2000])
        except Exception as exc:
            log.exception("job %s (%s) failed on attempt %s", job.id, job.kind, job.attempts)
            error = f"Internal error ({type(exc).__name__}); see the server log for job {job.id}"
            if job.attempts < job.max_attempts:
                await self._requeue(db, job, message="retrying after an error", error=error)
            else:
                await self._finish(db, job, JobStatus.failed, error=error)
        else:
            if result is not None and not isinstance(result, dict):
                result = {"value": result}
            try:
                result = json.loads(json.dumps(result))
            except (TypeError, ValueError):
                log.error("job %s (%s) returned a non-JSON result", job.id, job.kind)
                await self._finish(db, job, JobStatus.failed, error="The job's result is not JSON")
                return
            await self._finish(db, job, JobStatus.succeeded, result=result, progress=1.0)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self, db: Database, ctx: JobContext, task: asyncio.Task[Any]) -> None:
        """Heartbeat, and stop the handler on cancel, shutdown or loss of the job."""
        next_poll = time.monotonic() + self.poll_seconds
        next_beat = time.monotonic() + self.heartbeat_seconds
        while not task.done():
            await asyncio.sleep(0.1)
            if self._stopping.is_set():
                ctx.stop_reason = "shutdown"
                task.cancel()
                return
            now = time.monotonic()
            if now < next_poll:
                continue
            next_poll = now + self.poll_seconds
            query: Any = select(Job.cancel_requested).where(*ctx._owned())
            if now >= next_beat:
                next_beat = now + self.heartbeat_seconds
                query = update(Job).where(*ctx._owned()).values(heartbeat_at=utcnow())
                query = query.returning(Job.cancel_requested)
            try:
                async with db.sessionmaker() as session:
                    row = (await session.execute(query)).first()
                    await session.commit()
            except Exception:
                log.warning("heartbeat of job %s failed", ctx.job_id, exc_info=True)
                continue
            if row is None or row.cancel_requested:
                ctx.stop_reason = "lost" if row is None else "cancel"
                ctx._cancelled = row is not None
                task.cancel()
                return

    async def _finish(self, db: Database, job: Job, status: JobStatus, **values: Any) -> None:
        values.update(status=status, finished_at=utcnow())
        if await self._update_owned(db, job, values):
            await self._drop_staging(job.params)

    async def _drop_staging(self, params: dict[str, Any] | None) -> None:
        """An ended job's staged uploads go with it (on a storage client of this loop)."""
        keys = cleanup.staging_keys(params)
        if not keys:
            return
        storage = create_storage(self.settings)
        try:
            await cleanup.delete_keys(storage, keys)
        finally:
            await storage.close()

    async def _requeue(
        self,
        db: Database,
        job: Job,
        *,
        message: str,
        error: str | None = None,
        refund: bool = False,
    ) -> None:
        values: dict[str, Any] = {"status": JobStatus.queued, "message": message, "error": error}
        if refund:  # an interruption is not the job's fault: it keeps its attempt
            values["attempts"] = Job.attempts - 1
        guard = (Job.cancel_requested.is_(False),)
        if await self._update_owned(db, job, values, guard):
            await asyncio.to_thread(self._run_task, str(job.id))
        else:  # cancelled meanwhile
            await self._finish(db, job, JobStatus.cancelled, message="cancelled")

    async def _update_owned(
        self, db: Database, job: Job, values: dict[str, Any], guard: tuple[Any, ...] = ()
    ) -> bool:
        async with db.sessionmaker() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == JobStatus.running)
                .where(Job.attempts == job.attempts, *guard)
                .values(**values)
            )
            await session.commit()
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            fresh = await session.get(Job, job.id, populate_existing=True)
        if fresh is not None:
            self._emit_threadsafe(job_event(fresh), fresh.owner_id)
        return True

    def run_periodic(self, name: str) -> None:
        """Run one registered periodic function now, on a loop of its own (Huey's periodic
        task calls this in a consumer thread; tests call it directly)."""
        fn = _PERIODIC[name]
        if self._stopping.is_set():
            return

        async def run() -> None:
            db = Database(self.settings, pooled=False)
            try:
                await fn(JobScheduler(self, db))
            finally:
                await db.dispose()

        try:
            asyncio.run(run())
        except Exception:  # the next minute tries again
            log.exception("periodic job %s failed", name)
