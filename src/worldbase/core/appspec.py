"""`AppSpec`: everything an app plugs into the core, declared in one value.

Each `worldbase/apps/<name>/__init__.py` exports one `spec`; `worldbase/apps/registry.py`
lists them. The composition roots (`create_app`, the CLI, the worker, seeding, Alembic's
models) loop over that list, so nothing is registered by importing a module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.core.cleanup import register_staging_prefix
from worldbase.core.health import HealthCounter, register_health_counter
from worldbase.core.job_worker import Handler, Periodic, job_handler, periodic_job
from worldbase.core.jobs import heavy_job_kinds
from worldbase.settings import AppSettings, Settings

if TYPE_CHECKING:
    import typer

# `async seed_demo(session, settings) -> str`: loads the app's demo data idempotently and
# says what it did in one line.
DemoSeeder = Callable[[AsyncSession, Settings], Awaitable[str]]


@dataclass(frozen=True)
class AppSpec:
    name: str
    # Mounted in order, tagged with the app's name; app routes keep the seeds' paths.
    routers: tuple[APIRouter, ...] = ()
    # Job kind -> handler; `heavy_jobs` count against WORLDBASE_MAX_HEAVY_JOBS_PER_USER.
    jobs: Mapping[str, Handler] = field(default_factory=dict)
    heavy_jobs: tuple[str, ...] = ()
    # Run every minute by each job consumer (see `core.job_worker.periodic_job`).
    periodic_jobs: Mapping[str, Periodic] = field(default_factory=dict)
    # Storage prefixes whose objects belong to queued jobs (swept when no job owns them).
    staging_prefixes: tuple[str, ...] = ()
    seeder: DemoSeeder | None = None
    # Counts under `apps.<name>` in /health; `health_checks` keys also under `checks`.
    health: HealthCounter | None = None
    health_checks: tuple[str, ...] = ()
    # Adds the app's commands to `worldbase import`.
    import_commands: Callable[[typer.Typer], None] | None = None
    # The app's own settings (`settings.app(cls)` reads them).
    settings: type[AppSettings] | None = None
    # Rasters public by design, readable through `/cog` exactly as named.
    public_rasters: Callable[[Settings], Iterable[str]] | None = None
    # The module defining the app's tables (their Alembic branch carries the app's name).
    models: ModuleType | None = None

    @property
    def migration_branch(self) -> str | None:
        return self.name if self.models is not None else None


def install(spec: AppSpec) -> None:
    """Hand the app's jobs, schedules, staging prefixes and health counts to the core."""
    for kind, handler in spec.jobs.items():
        job_handler(kind)(handler)
    heavy_job_kinds(*spec.heavy_jobs)
    for name, schedule in spec.periodic_jobs.items():
        periodic_job(name)(schedule)
    for prefix in spec.staging_prefixes:
        register_staging_prefix(prefix)
    if spec.health is not None:
        register_health_counter(spec.name, spec.health, checks=spec.health_checks)
