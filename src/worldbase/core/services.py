"""The running services of one process, built from settings in one place, and their dependencies.

Each backend (storage, cache, hub, rate limiter, jobs) is a small protocol with one
implementation per backend; `Services.start` picks them from the settings.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from worldbase.core.auth import ensure_admin
from worldbase.core.cache import Cache, create_cache
from worldbase.core.db import Database
from worldbase.core.jobs import JobRuntime
from worldbase.core.migrate import upgrade_head
from worldbase.core.ratelimit import RateLimiter, create_rate_limiter
from worldbase.core.realtime import Hub, create_hub
from worldbase.core.storage import Storage
from worldbase.core.storage_backends import create_storage
from worldbase.settings import Settings

log = logging.getLogger("worldbase.services")


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    cache: Cache
    hub: Hub
    limiter: RateLimiter
    jobs: JobRuntime

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        if settings.is_sqlite:
            # Embedded mode migrates itself; PostgreSQL is migrated by `worldbase migrate`.
            await asyncio.to_thread(upgrade_head, settings)
        db = Database(settings)
        storage = create_storage(settings)
        cache = create_cache(settings)
        hub = create_hub(settings)
        await hub.start()
        limiter = create_rate_limiter(settings)
        jobs = JobRuntime(settings, hub=hub, storage=storage, db=db)
        await jobs.start()
        await ensure_admin(db, settings)
        return cls(settings, db, storage, cache, hub, limiter, jobs)

    async def stop(self) -> None:
        await self.jobs.stop()
        await self.hub.stop()
        await self.cache.close()
        await self.limiter.close()
        await self.storage.close()
        await self.db.dispose()


def services_of(connection: HTTPConnection) -> Services:
    """The running services, for code that holds a request or WebSocket (not a dependency)."""
    services: Services = connection.app.state.services
    return services


async def get_services(request: HTTPConnection) -> Services:
    return services_of(request)


# Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in a thread pool,
# which costs a thread hop per request for what is an attribute read.
ServicesDep = Annotated[Services, Depends(get_services)]


async def get_storage(request: HTTPConnection) -> Storage:
    return services_of(request).storage


async def get_cache(request: HTTPConnection) -> Cache:
    return services_of(request).cache


async def get_hub(request: HTTPConnection) -> Hub:
    return services_of(request).hub


async def get_jobs(request: HTTPConnection) -> JobRuntime:
    return services_of(request).jobs


StorageDep = Annotated[Storage, Depends(get_storage)]
CacheDep = Annotated[Cache, Depends(get_cache)]
HubDep = Annotated[Hub, Depends(get_hub)]
JobsDep = Annotated[JobRuntime, Depends(get_jobs)]
