"""Mesh exports: the seed's `export_jobs` rows, made by a core job, reused when identical.

An export is identified by (character, format, model file): the character's model is stored
under a content-addressed key, so a new model means new exports while repeated requests for
the same one share the first (finished or still running) export.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.bestiary import meshes
from worldbase.apps.bestiary.models import Character, ExportJob, ExportStatus
from worldbase.core.db import utcnow
from worldbase.core.errors import Conflict, NotFound, RateLimited
from worldbase.core.jobs import JobRuntime
from worldbase.core.models import User

EXPORT_KIND = "bestiary.export"
_REUSABLE = (ExportStatus.queued.value, ExportStatus.running.value, ExportStatus.completed.value)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "model"


async def get_or_raise(session: AsyncSession, *, export_id: int) -> ExportJob:
    export = await session.get(ExportJob, export_id)
    if export is None:
        raise NotFound("Export not found")
    return export


async def create(
    session: AsyncSession, jobs: JobRuntime, *, user: User, character: Character, fmt: str
) -> tuple[ExportJob, bool]:
    """(export, reused): an identical queued, running or finished export is returned as is."""
    if not character.model_path:
        raise Conflict("This character has no 3D model to export; upload one first")
    existing = await session.scalar(
        select(ExportJob)
        .where(
            ExportJob.character_id == character.id,
            ExportJob.format == fmt,
            ExportJob.source_path == character.model_path,
            ExportJob.status.in_(_REUSABLE),
        )
        .order_by(ExportJob.id.desc())
        .limit(1)
    )
    if existing is not None:
        return existing, True
    # A conversion is a heavy job: 429 past the owner's limit, before anything is recorded.
    await jobs.check_capacity(owner_id=user.id)
    export = ExportJob(
        character_id=character.id,
        format=fmt,
        status=ExportStatus.queued.value,
        source_path=character.model_path,
        requested_by=user.id,
    )
    session.add(export)
    await session.commit()
    try:
        job = await jobs.enqueue(
            kind=EXPORT_KIND,
            params={"export_id": export.id},
            owner_id=user.id,
            max_attempts=2,
            heavy=True,
        )
    except RateLimited:
        # Another request of this user took the last place meanwhile: leave no row behind.
        await session.delete(export)
        await session.commit()
        raise
    except Exception:
        export.status, export.error = ExportStatus.failed.value, "could not be queued"
        await session.commit()
        raise
    export.job_id = job.id
    await session.commit()
    await session.refresh(export)
    return export, False


async def _set(session: AsyncSession, export_id: int, **values: Any) -> None:
    await session.execute(update(ExportJob).where(ExportJob.id == export_id).values(**values))
    await session.commit()


async def run(session: AsyncSession, storage: Any, *, export_id: int) -> dict[str, Any]:
    """The job's work: convert the stored GLB and store the file (called by `jobs.py`)."""
    export = await session.get(ExportJob, export_id)
    if export is None:
        raise NotFound("The export was deleted")
    character = await session.get(Character, export.character_id)
    name = slug(character.name if character else "model")
    await _set(session, export_id, status=ExportStatus.running.value, error=None)
    try:
        glb = await storage.get(export.source_path)
        made = await asyncio.to_thread(meshes.convert, glb, export.format, name=name)
        key = f"bestiary/exports/{export_id}/{name}-{uuid.uuid4().hex[:8]}.{made.extension}"
        await storage.put(key, made.data, content_type=made.content_type)
    except Exception as exc:
        message = getattr(exc, "message", None) or f"export failed ({type(exc).__name__})"
        await _set(
            session,
            export_id,
            status=ExportStatus.failed.value,
            error=message[:2000],
            completed_at=utcnow(),
        )
        raise
    await _set(
        session,
        export_id,
        status=ExportStatus.completed.value,
        file_path=key,
        completed_at=utcnow(),
    )
    return {"export_id": export_id, "file_path": key, "bytes": len(made.data)}


def download_name(export: ExportJob, character: Character | None) -> str:
    ext = "zip" if export.format == "obj" else export.format
    return f"{slug(character.name if character else 'model')}.{ext}"
