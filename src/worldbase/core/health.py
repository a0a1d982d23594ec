"""Health checks behind `GET /health` (seed 002's shape) and the job counts behind `/metrics`.

Every check is bounded by a timeout so the endpoint never hangs, and reports a short
string (exception class + first line), never a stack trace. Apps add their counts through
their spec (`AppSpec.health`, installed by the app registry); only enabled apps' run. The document
is seed 002's (`status`, `timestamp`, `checks.database`, `checks.disk_space`,
`checks.images.total`) with seed 000's `database`/`storage` booleans at the top level.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase import __version__
from worldbase.core.db import Database
from worldbase.core.models import Job, JobStatus
from worldbase.core.services import Services
from worldbase.core.storage import Storage
from worldbase.settings import Settings

CHECK_TIMEOUT_SECONDS = 2.0
LOW_DISK_BYTES = 1024**3
# A cheap round trip that writes nothing: listing a (normally empty) prefix fails on a
# missing bucket or bad credentials, where a HEAD of a missing key would look fine.
STORAGE_PROBE_PREFIX = "health/"

HealthCounter = Callable[[AsyncSession], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class _Registered:
    counter: HealthCounter
    # Keys of the counts that a seed's monitors read under `checks` (002's `checks.images`).
    checks: tuple[str, ...]


_COUNTERS: dict[str, _Registered] = {}


def register_health_counter(
    name: str, counter: HealthCounter, *, checks: tuple[str, ...] = ()
) -> None:
    """Let an app report counts (e.g. `{"images": 12}`) under `apps.<name>` in /health;
    the keys in `checks` are also reported under `checks.<key>`."""
    _COUNTERS[name] = _Registered(counter, checks)


def short_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"error: timeout after {CHECK_TIMEOUT_SECONDS:g}s"
    first_line = (str(exc).strip().splitlines() or [""])[0][:200]
    name = type(exc).__name__
    return f"error: {name}: {first_line}" if first_line else f"error: {name}"


async def _bounded(check: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)


async def check_database(db: Database) -> str:
    async def ping() -> None:
        # Bounded as a whole: the connect itself may hang on an unreachable host.
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await _bounded(ping())
    except Exception as exc:
        return short_error(exc)
    return "ok"


async def _list_probe(storage: Storage) -> None:
    listing = storage.list(STORAGE_PROBE_PREFIX)
    try:
        await anext(listing, None)
    finally:
        aclose = getattr(listing, "aclose", None)
        if aclose is not None:
            await aclose()


async def check_storage(services: Services) -> str:
    try:
        await _bounded(_list_probe(services.storage))
    except Exception as exc:
        return short_error(exc)
    return "ok"


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk_space(settings: Settings) -> dict[str, Any]:
    try:
        usage = shutil.disk_usage(_existing_parent(settings.data_dir))
    except OSError as exc:
        return {"status": short_error(exc), "free_gb": None}
    status = "warning" if usage.free < LOW_DISK_BYTES else "ok"
    return {"status": status, "free_gb": round(usage.free / 1024**3, 2)}


async def check_redis(url: str) -> str:
    import redis.asyncio as aioredis

    client = aioredis.from_url(
        url, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        await _bounded(client.ping())
    except Exception as exc:
        return short_error(exc)
    finally:
        await client.aclose()  # type: ignore[attr-defined]  # redis>=5; stubs lag
    return "ok"


async def job_counts(db: Database) -> dict[str, int]:
    """Jobs by status (every status present, zero when none)."""
    async with db.sessionmaker() as session:
        rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
        counts = {status.value: 0 for status in JobStatus}
        for status, count in rows.all():
            counts[JobStatus(status).value] = int(count)
        return counts


async def _failed_since(db: Database, since: datetime) -> int:
    async with db.sessionmaker() as session:
        query = select(func.count()).where(Job.status == JobStatus.failed, Job.updated_at >= since)
        return int((await session.execute(query)).scalar_one())


async def _stuck(
    db: Database, *, queued_grace: timedelta, stale_after: timedelta
) -> tuple[int, int]:
    """Jobs queued longer than the grace period, and running jobs without a recent heartbeat."""
    now = datetime.now(UTC)
    last_sign = func.coalesce(Job.heartbeat_at, Job.started_at, Job.updated_at)
    queued = select(func.count()).where(
        Job.status == JobStatus.queued, Job.updated_at < now - queued_grace
    )
    running = select(func.count()).where(
        Job.status == JobStatus.running, last_sign < now - stale_after
    )
    async with db.sessionmaker() as session:
        return int(await session.scalar(queued) or 0), int(await session.scalar(running) or 0)


async def check_jobs(
    db: Database, *, queued_grace: timedelta, stale_after: timedelta = timedelta(seconds=60)
) -> dict[str, Any]:
    """Counts by state; "degraded" while a job is stuck (recovery has not caught it yet)."""
    try:
        counts = await _bounded(job_counts(db))
        failed = await _bounded(_failed_since(db, datetime.now(UTC) - timedelta(hours=24)))
        stuck_queued, stuck_running = await _bounded(
            _stuck(db, queued_grace=queued_grace, stale_after=stale_after)
        )
    except Exception as exc:
        return {
            "status": short_error(exc),
            "queued": None,
            "running": None,
            "failed": None,
            "failed_last_24h": None,
            "stuck_queued": None,
            "stuck_running": None,
        }
    return {
        "status": "degraded" if stuck_queued or stuck_running else "ok",
        "queued": counts[JobStatus.queued.value],
        "running": counts[JobStatus.running.value],
        "failed": counts[JobStatus.failed.value],
        "failed_last_24h": failed,
        "stuck_queued": stuck_queued,
        "stuck_running": stuck_running,
    }


async def _app_counts(db: Database, name: str, counter: HealthCounter) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with db.sessionmaker() as session:
            return await counter(session)

    try:
        return await _bounded(run())
    except Exception as exc:
        return {"status": short_error(exc)}


async def check_health(*, services: Services) -> dict[str, Any]:
    """The health document; `status` is "error" when the database is unreachable."""
    settings = services.settings
    db = services.db
    enabled = [name for name in settings.worldbase_apps if name in _COUNTERS]
    database, storage, jobs, redis, *apps = await asyncio.gather(
        check_database(db),
        check_storage(services),
        check_jobs(
            db,
            queued_grace=timedelta(seconds=settings.worldbase_job_queued_grace),
            stale_after=timedelta(seconds=settings.worldbase_job_stale_seconds),
        ),
        check_redis(settings.redis_url) if settings.redis_url else _none(),
        *(_app_counts(db, name, _COUNTERS[name].counter) for name in enabled),
    )
    checks: dict[str, Any] = {
        "database": database,
        "storage": storage,
        "disk_space": await asyncio.to_thread(check_disk_space, settings),
    }
    if redis is not None:
        checks["redis"] = redis
    checks["jobs"] = jobs
    counts = dict(zip(enabled, apps, strict=True))
    for name in enabled:
        for key in _COUNTERS[name].checks:
            checks[key] = _check_entry(counts[name], key)
    return {
        "status": overall_status(checks),
        # Seed 000's monitors read these two booleans.
        "database": database == "ok",
        "storage": storage == "ok",
        "timestamp": datetime.now(UTC).isoformat(),
        "version": __version__,
        "checks": checks,
        "apps": counts,
    }


def _check_entry(counts: dict[str, Any], key: str) -> Any:
    if key in counts:
        return counts[key]
    # The counter failed (its error is in `status`): same shape, no numbers.
    return {"total": None, "status": counts.get("status", "error: missing")}


async def _none() -> None:
    return None


def overall_status(checks: dict[str, Any]) -> str:
    if checks["database"] != "ok":
        return "error"
    states = [
        value.get("status", "ok") if isinstance(value, dict) else value for value in checks.values()
    ]
    return "ok" if all(state == "ok" for state in states) else "degraded"
