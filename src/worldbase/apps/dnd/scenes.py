"""The scene cache: one image per (location, time of day, weather), kept CACHE_EXPIRY_DAYS.

A miss generates once even under concurrent requests (single-flight): an asyncio lock per
key in this process and, with Redis, a Redis lock per key so it also holds across
workers. Whoever waited re-reads the cache after the lock and finds the fresh entry.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.dnd import service
from worldbase.apps.dnd.models import ImageAsset, SceneCache
from worldbase.apps.dnd.providers import GenerationSpec, ImageProvider
from worldbase.apps.dnd.settings import DndSettings
from worldbase.core.db import utcnow
from worldbase.core.errors import ServiceUnavailable
from worldbase.core.storage import Storage
from worldbase.settings import Settings

LOCK_SECONDS = 180  # longer than any generation (Gemini's timeout is 60 s)


def normalize(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip()).lower()


def cache_key(location: str, time_of_day: str, weather: str) -> str:
    return "|".join(normalize(v) for v in (location, time_of_day, weather))


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@asynccontextmanager
async def single_flight(key: str, *, locks: KeyedLocks, settings: Settings) -> AsyncIterator[None]:
    async with locks.hold(key):
        if not settings.redis_url:
            yield
            return
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        name = f"{settings.worldbase_namespace}:dnd:scene-lock:{digest}"
        client = aioredis.from_url(settings.redis_url)
        try:
            lock = client.lock(name, timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS)
            if not await lock.acquire():
                raise ServiceUnavailable("Scene generation is busy; try again shortly")
            try:
                yield
            finally:
                await lock.release()
        finally:
            await client.aclose()  # type: ignore[attr-defined]  # redis>=5; stubs lag


async def _entry(session: AsyncSession, key: str) -> SceneCache | None:
    result = await session.scalars(
        select(SceneCache)
        .where(SceneCache.cache_key == key)
        .execution_options(populate_existing=True)
    )
    return result.first()


def aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _fresh(entry: SceneCache | None, now: datetime, *, newer_than: datetime | None) -> bool:
    if entry is None or aware(entry.expires_at) <= now or entry.image.is_deleted:
        return False
    return newer_than is None or aware(entry.created_at) >= newer_than


async def _hit(session: AsyncSession, entry: SceneCache) -> SceneCache:
    now = utcnow()
    await session.execute(
        update(SceneCache)
        .where(SceneCache.id == entry.id)
        .values(hit_count=SceneCache.hit_count + 1, last_accessed_at=now)
        .execution_options(synchronize_session=False)
    )
    # Scene uses are counted here (hit_count); the image's use_count counts fetches by id.
    await session.commit()
    entry.hit_count += 1
    entry.last_accessed_at = now
    return entry


async def get_or_create(
    session: AsyncSession,
    *,
    storage: Storage,
    provider: ImageProvider,
    settings: Settings,
    locks: KeyedLocks,
    location: str,
    time_of_day: str,
    weather: str,
    force_regenerate: bool = False,
    created_by: Any = None,
    before_generate: Callable[[], Awaitable[None]] | None = None,
) -> tuple[SceneCache, bool]:
    """The cached scene, or a newly generated one; returns (entry, cached?)."""
    key = cache_key(location, time_of_day, weather)
    asked_at = utcnow()
    if not force_regenerate:
        entry = await _entry(session, key)
        if _fresh(entry, asked_at, newer_than=None):
            assert entry is not None
            return await _hit(session, entry), True
    async with single_flight(key, locks=locks, settings=settings):
        # Someone else may have generated it while we waited; with force, only an entry
        # made after this request began counts.
        entry = await _entry(session, key)
        newer_than = asked_at if force_regenerate else None
        if _fresh(entry, utcnow(), newer_than=newer_than):
            assert entry is not None
            return await _hit(session, entry), True
        if before_generate is not None:
            await before_generate()  # the rate limit counts generations, not cache hits
        try:
            created = await _generate(
                session,
                storage=storage,
                provider=provider,
                settings=settings,
                key=key,
                entry=entry,
                location=location.strip(),
                time_of_day=time_of_day.strip(),
                weather=weather.strip(),
                created_by=created_by,
            )
        except _LostRace:
            # Another worker without a shared lock inserted the key first: use theirs.
            entry = await _entry(session, key)
            if entry is None:
                raise ServiceUnavailable("Scene cache is busy; try again shortly") from None
            return await _hit(session, entry), True
        return created, False


async def _generate(
    session: AsyncSession,
    *,
    storage: Storage,
    provider: ImageProvider,
    settings: Settings,
    key: str,
    entry: SceneCache | None,
    location: str,
    time_of_day: str,
    weather: str,
    created_by: Any,
) -> SceneCache:
    prompt = f"{location} at {time_of_day}, {weather} weather, seen as a wide establishing shot"
    spec = GenerationSpec("scene", location, prompt, None, "16:9")
    async with service.generated(
        storage,
        provider=provider,
        spec=spec,
        component="scene",
        quality=settings.webp_quality,
        created_by=created_by,
    ) as image:
        now = utcnow()
        session.add(image)
        await session.flush()
        if entry is None:
            entry = SceneCache(cache_key=key, hit_count=0, miss_count=0)
            session.add(entry)
        entry.location, entry.time_of_day, entry.weather = location, time_of_day, weather
        entry.image_id = image.id
        entry.image = image
        entry.miss_count = (entry.miss_count or 0) + 1
        entry.created_at = now
        entry.expires_at = now + timedelta(days=settings.app(DndSettings).cache_expiry_days)
        entry.last_accessed_at = now
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise _LostRace() from None
    return entry


class _LostRace(Exception):
    pass


async def stats(session: AsyncSession, *, settings: Settings) -> dict[str, Any]:
    now = utcnow()
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(SceneCache.expires_at > now),
                func.coalesce(func.sum(SceneCache.hit_count), 0),
                func.coalesce(func.sum(SceneCache.miss_count), 0),
                func.min(SceneCache.created_at),
                func.max(SceneCache.created_at),
            )
        )
    ).one()
    total, active, hits, misses, oldest, newest = row
    lookups = int(hits) + int(misses)
    return {
        "total_entries": int(total),
        "active_entries": int(active),
        "expired_entries": int(total) - int(active),
        "total_hits": int(hits),
        "total_misses": int(misses),
        "hit_rate": round(int(hits) / lookups, 3) if lookups else 0.0,
        "expiry_days": settings.app(DndSettings).cache_expiry_days,
        "oldest_entry_at": oldest,
        "newest_entry_at": newest,
    }


async def delete(session: AsyncSession, *, expired_only: bool = False) -> int:
    """Remove cache entries (all, or the expired ones); their images stay in the gallery."""
    statement = sql_delete(SceneCache)
    if expired_only:
        statement = statement.where(SceneCache.expires_at <= utcnow())
    result = await session.execute(statement.execution_options(synchronize_session=False))
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def image_of(session: AsyncSession, entry: SceneCache) -> ImageAsset:
    image = await session.get(ImageAsset, entry.image_id)
    assert image is not None  # foreign key
    return image
