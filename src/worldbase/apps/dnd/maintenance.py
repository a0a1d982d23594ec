"""Maintenance: expired scene-cache cleanup, orphaned images (rows without files, files
without rows) and system statistics. Also run as the `dnd.maintenance` job (jobs.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.dnd import scenes
from worldbase.apps.dnd.models import ImageAsset
from worldbase.apps.dnd.service import FULL_PREFIX, THUMB_PREFIX
from worldbase.core.db import utcnow
from worldbase.core.storage import Storage
from worldbase.settings import Settings

# A file younger than this may belong to a generation whose row is not committed yet.
ORPHAN_FILE_GRACE = timedelta(minutes=10)
BATCH = 500


async def delete_expired(session: AsyncSession) -> int:
    return await scenes.delete(session, expired_only=True)


async def _stored_keys(storage: Storage) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for prefix in (FULL_PREFIX, THUMB_PREFIX):
        async for obj in storage.list(prefix):
            found[obj.key] = obj.modified_at
    return found


async def delete_orphans(
    session: AsyncSession, *, storage: Storage, dry_run: bool = False
) -> dict[str, Any]:
    """Rows whose files are gone are deleted (with their cache entries); files no row
    names are deleted once older than ORPHAN_FILE_GRACE. Soft-deleted rows keep their files."""
    stored = await _stored_keys(storage)
    rows = (
        await session.execute(
            select(ImageAsset.id, ImageAsset.storage_path_full, ImageAsset.storage_path_thumbnail)
        )
    ).all()
    referenced: set[str] = set()
    broken: list[int] = []
    for image_id, full, thumb in rows:
        referenced.update((full, thumb))
        if full not in stored or thumb not in stored:
            broken.append(image_id)
    cutoff = utcnow() - ORPHAN_FILE_GRACE
    stray = [
        key
        for key, modified in stored.items()
        if key not in referenced and scenes.aware(modified) < cutoff
    ]
    # A broken row's surviving half is a stray file too.
    leftovers = [
        key
        for image_id, full, thumb in rows
        if image_id in set(broken)
        for key in (full, thumb)
        if key in stored
    ]
    if not dry_run:
        for start in range(0, len(broken), BATCH):
            chunk = broken[start : start + BATCH]
            await session.execute(delete(ImageAsset).where(ImageAsset.id.in_(chunk)))
        await session.commit()
        for key in [*stray, *leftovers]:
            await storage.delete(key)
    return {
        "status": "ok",
        "dry_run": dry_run,
        "rows_without_files": len(broken),
        "files_without_rows": len(stray),
        "rows_deleted": 0 if dry_run else len(broken),
        "files_deleted": 0 if dry_run else len(stray) + len(leftovers),
    }


async def stats(session: AsyncSession, *, settings: Settings, provider: str) -> dict[str, Any]:
    total, active, featured, size, uses = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(ImageAsset.is_deleted.is_(False)),
                func.count().filter(
                    ImageAsset.is_featured.is_(True), ImageAsset.is_deleted.is_(False)
                ),
                func.coalesce(func.sum(ImageAsset.file_size_bytes), 0),
                func.coalesce(func.sum(ImageAsset.use_count), 0),
            )
        )
    ).one()
    by_type = dict(
        (
            await session.execute(
                select(ImageAsset.subject_type, func.count())
                .where(ImageAsset.is_deleted.is_(False))
                .group_by(ImageAsset.subject_type)
            )
        ).all()
    )
    return {
        "images": {
            "total": int(total),
            "active": int(active),
            "deleted": int(total) - int(active),
            "featured": int(featured),
            "by_type": {kind: int(by_type.get(kind, 0)) for kind in ("scene", "item", "character")},
            "total_size_mb": round(int(size) / 1024**2, 3),
            "total_uses": int(uses),
        },
        "scene_cache": await scenes.stats(session, settings=settings),
        "provider": provider,
        "timestamp": utcnow(),
    }


async def run_all(session: AsyncSession, *, storage: Storage) -> dict[str, Any]:
    """What the scheduled job does: both cleanups."""
    expired = await delete_expired(session)
    orphans = await delete_orphans(session, storage=storage)
    return {"expired_cache_deleted": expired, "orphans": orphans}
