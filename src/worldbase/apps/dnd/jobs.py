"""Background jobs of the dnd app: `dnd.maintenance` runs both cleanups, once a day on its
own (`dnd.maintenance.schedule`) and whenever enqueued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from worldbase.apps.dnd import maintenance
from worldbase.core.job_worker import JobScheduler
from worldbase.core.jobs import JobContext
from worldbase.core.models import Job

MAINTENANCE_KIND = "dnd.maintenance"
MAINTENANCE_EVERY = timedelta(hours=24)


async def run_maintenance(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    await ctx.progress(0.1, "cleaning up")
    async with ctx.db.sessionmaker() as session:
        result = await maintenance.run_all(session, storage=ctx.storage)
    await ctx.progress(1.0, "done")
    return result


async def schedule_maintenance(scheduler: JobScheduler) -> None:
    """Checked every minute by the consumers; enqueues the cleanup when a day has passed
    since the last one (two consumers may both enqueue: the cleanups are idempotent)."""
    async with scheduler.db.sessionmaker() as session:
        last = await session.scalar(
            select(func.max(Job.created_at)).where(Job.kind == MAINTENANCE_KIND)
        )
    if last is not None and last.tzinfo is None:  # SQLite returns naive UTC
        last = last.replace(tzinfo=UTC)
    if last is None or datetime.now(UTC) - last >= MAINTENANCE_EVERY:
        await scheduler.enqueue(kind=MAINTENANCE_KIND, params={})


HANDLERS = {MAINTENANCE_KIND: run_maintenance}
SCHEDULES = {"dnd.maintenance.schedule": schedule_maintenance}
