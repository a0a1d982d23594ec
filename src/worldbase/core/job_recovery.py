"""Recovery of jobs nobody runs any more, a mixin of `JobRuntime`.

A job left `running` by a dead worker is re-queued or failed (`_recover`), never left
running; a job left `queued` without a queue message (its task was lost before it started)
is re-queued once, then failed (`_recover_lost_queued`), never left queued. Each pass also
sweeps the temp folders and staged uploads that no live job owns.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from typing import Any

from sqlalchemy import func, select, update

from worldbase.core import cleanup
from worldbase.core.db import Database, utcnow
from worldbase.core.job_worker import JobExecution
from worldbase.core.models import Job, JobStatus
from worldbase.core.storage_backends import create_storage

log = logging.getLogger("worldbase.jobs")

# The message of a job re-queued because its queue message was lost (a second loss fails it).
LOST_MESSAGE = "re-queued: its queue message was lost"


class JobRecovery(JobExecution):
    """Finds and repairs interrupted and lost jobs (start-up, the reaper, `worldbase worker`)."""

    @property
    def _reap_every(self) -> float:
        """Seconds between reaper passes: a dead worker's job is recovered within about
        stale + this (1.5 x WORLDBASE_JOB_STALE_SECONDS, at most stale + 30 s)."""
        return max(1.0, min(30.0, self._stale_seconds / 2))

    def _reap(self) -> None:
        """Each consumer's reaper thread: recover jobs whose worker died (no heartbeat)."""
        if self._stopping.is_set() or time.monotonic() - self._recovered_at < self._reap_every / 2:
            return  # start-up (or another pass of this process) has just recovered everything

        async def reap() -> None:
            db = Database(self.settings, pooled=False)
            try:
                await self._recover(db, every_running=False, in_worker=True)
            finally:
                await db.dispose()

        asyncio.run(reap())

    async def _recover(self, db: Database, *, every_running: bool, in_worker: bool) -> None:
        query = select(Job).where(Job.status == JobStatus.running)
        if not every_running:
            cutoff = utcnow() - self.stale_after
            # No heartbeat yet (inserted as running by hand): judge it by its last change.
            last_sign = func.coalesce(Job.heartbeat_at, Job.started_at, Job.updated_at)
            query = query.where(last_sign < cutoff)
        async with db.sessionmaker() as session:
            jobs = builtins.list(await session.scalars(query.limit(1000)))
        self._recovered_at = time.monotonic()
        for job in jobs:
            values: dict[str, Any]
            if job.cancel_requested:
                values = {"status": JobStatus.cancelled, "message": "cancelled"}
            elif job.attempts < job.max_attempts:
                values = {"status": JobStatus.queued, "message": "retried after interruption"}
            else:
                values = {"status": JobStatus.failed, "error": "interrupted"}
            if values["status"] != JobStatus.queued:
                values["finished_at"] = utcnow()
            async with db.sessionmaker() as session:
                result = await session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.status == JobStatus.running)
                    .where(Job.attempts == job.attempts)
                    .values(**values)
                )
                await session.commit()
                if not result.rowcount:  # type: ignore[attr-defined]
                    continue  # it came back to life or someone else recovered it
                fresh = await session.get(Job, job.id, populate_existing=True)
            log.warning("recovered interrupted job %s: %s", job.id, values["status"])
            if values["status"] == JobStatus.queued:
                await asyncio.to_thread(self._run_task, str(job.id))
            else:
                await self._drop_staging(job.params)
            if fresh is not None:
                await self._announce(fresh, in_worker=in_worker)
        await self._recover_lost_queued(db, in_worker=in_worker)
        try:
            await self._sweep_orphans(db)
        except Exception:  # storage down: the next pass tries again
            log.warning("orphan sweep failed", exc_info=True)

    async def _recover_lost_queued(self, db: Database, *, in_worker: bool) -> None:
        """Queued past the grace period with no message in the queue: the task was lost before
        it started (enqueue crashed, or Huey gave up retrying a claim). Re-queue it once; a
        second loss fails it with the reason."""
        cutoff = utcnow() - self.queued_grace
        query = select(Job).where(Job.status == JobStatus.queued, Job.updated_at < cutoff)
        async with db.sessionmaker() as session:
            jobs = builtins.list(await session.scalars(query.limit(1000)))
        if not jobs:
            return
        waiting = await asyncio.to_thread(self._waiting_ids)
        for job in jobs:
            if str(job.id) in waiting:
                continue  # a backlog, not a loss
            values: dict[str, Any]
            if job.message == LOST_MESSAGE:
                values = {
                    "status": JobStatus.failed,
                    "error": "never started: its queue message was lost twice",
                    "finished_at": utcnow(),
                }
            else:
                values = {"message": LOST_MESSAGE}  # also moves updated_at: a fresh grace period
            async with db.sessionmaker() as session:
                result = await session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.status == JobStatus.queued)
                    .where(Job.updated_at == job.updated_at)  # untouched since we looked
                    .values(**values)
                )
                await session.commit()
                if not result.rowcount:  # type: ignore[attr-defined]
                    continue
                fresh = await session.get(Job, job.id, populate_existing=True)
            log.warning("job %s was queued without a queue message: %s", job.id, values)
            if "status" not in values:
                # A duplicate message (the lost one was only late) is harmless: claims are guarded.
                await asyncio.to_thread(self._run_task, str(job.id))
            else:
                await self._drop_staging(job.params)
            if fresh is not None:
                await self._announce(fresh, in_worker=in_worker)

    async def _sweep_orphans(self, db: Database) -> None:
        """Temp folders of dead processes and staged uploads no live job owns."""
        grace = self.settings.worldbase_orphan_grace
        await asyncio.to_thread(cleanup.sweep_temp, grace=grace)
        storage = create_storage(self.settings)
        try:
            await cleanup.sweep_staging(db=db, storage=storage, grace=grace)
        finally:
            await storage.close()
