"""Reconstruction uploads and jobs: stored photos, the job rows, status documents, results.

A job is a core `jobs` row (status, progress, cancel, retries; kind `bestiary.reconstruct`)
plus this app's `reconstruction_jobs` row (stage, log tail, result, stats) with the same id.
Either side may write the app row first (the worker can start before the request returns),
so both insert it if missing.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import uuid
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.bestiary import meshes
from worldbase.apps.bestiary.models import ReconstructionJob, ReconstructionUpload
from worldbase.apps.bestiary.uploads import Intake
from worldbase.core.errors import Conflict, NotFound
from worldbase.core.jobs import JobRuntime
from worldbase.core.models import Job, JobStatus, User
from worldbase.core.storage import Storage

RECONSTRUCT_KIND = "bestiary.reconstruct"
LOG_LINES = 50
STATUS = {
    JobStatus.queued: "queued",
    JobStatus.running: "running",
    JobStatus.succeeded: "completed",
    JobStatus.failed: "failed",
    JobStatus.cancelled: "cancelled",
}


def upload_prefix(upload_id: uuid.UUID) -> str:
    return f"bestiary/uploads/{upload_id}/"


def result_key(job_id: uuid.UUID) -> str:
    return f"bestiary/reconstructions/{job_id}/model.glb"


async def create_upload(
    session: AsyncSession, storage: Storage, *, user: User, intake: Intake
) -> ReconstructionUpload:
    """Store the photos, then the row; a failure removes what was stored."""
    upload_id = uuid.uuid4()
    keys: builtins.list[str] = []
    try:
        for index, image in enumerate(intake.images):
            key = f"{upload_prefix(upload_id)}img_{index:04d}.jpg"
            await storage.put(key, image, content_type="image/jpeg")
            keys.append(key)
        upload = ReconstructionUpload(
            id=upload_id,
            owner_id=user.id,
            source=intake.source,
            image_count=len(intake.images),
            total_bytes=sum(len(i) for i in intake.images),
        )
        session.add(upload)
        await session.commit()
    except BaseException:
        await asyncio.shield(_delete_keys(storage, keys))
        raise
    return upload


async def _delete_keys(storage: Storage, keys: builtins.list[str]) -> None:
    for key in keys:
        with contextlib.suppress(NotFound):
            await storage.delete(key)


async def get_upload_or_raise(
    session: AsyncSession, *, upload_id: uuid.UUID, user: User
) -> ReconstructionUpload:
    upload = await session.get(ReconstructionUpload, upload_id)
    if upload is None or not (user.is_admin or upload.owner_id == user.id):
        raise NotFound("Upload not found")
    return upload


async def delete_upload(
    session: AsyncSession, storage: Storage, *, upload: ReconstructionUpload
) -> None:
    """The photos and the row; refused while a job of this upload is queued or running."""
    busy = await session.scalar(
        select(func.count(Job.id))
        .join(ReconstructionJob, ReconstructionJob.id == Job.id)
        .where(ReconstructionJob.upload_id == upload.id)
        .where(Job.status.in_([JobStatus.queued, JobStatus.running]))
    )
    if busy:
        raise Conflict("A reconstruction of this upload is still running; cancel it first")
    keys = await upload_keys(storage, upload_id=upload.id)
    await session.delete(upload)
    await session.commit()
    await _delete_keys(storage, keys)


async def ensure_row(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    owner_id: uuid.UUID,
    upload_id: uuid.UUID | None,
    options: dict[str, Any],
) -> ReconstructionJob:
    row = await session.get(ReconstructionJob, job_id)
    if row is not None:
        return row
    row = ReconstructionJob(
        id=job_id, owner_id=owner_id, upload_id=upload_id, options=options, stage="queued", log=""
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:  # the other side inserted it first
        await session.rollback()
        found = await session.get(ReconstructionJob, job_id)
        if found is None:
            raise
        return found
    return row


async def create(
    session: AsyncSession,
    jobs: JobRuntime,
    *,
    user: User,
    upload: ReconstructionUpload,
    options: dict[str, Any],
) -> ReconstructionJob:
    params = {"upload_id": str(upload.id), "options": options}
    job = await jobs.enqueue(
        kind=RECONSTRUCT_KIND, params=params, owner_id=user.id, max_attempts=2, heavy=True
    )
    return await ensure_row(
        session, job_id=job.id, owner_id=user.id, upload_id=upload.id, options=options
    )


async def get_or_raise(
    session: AsyncSession, *, job_id: uuid.UUID, user: User
) -> tuple[ReconstructionJob, Job]:
    """The app row and the core job, if the caller started it or is an admin (else 404)."""
    row = await session.get(ReconstructionJob, job_id)
    job = await session.get(Job, job_id)
    if row is None or job is None or not (user.is_admin or row.owner_id == user.id):
        raise NotFound("Reconstruction job not found")
    return row, job


def status_document(row: ReconstructionJob, job: Job) -> dict[str, Any]:
    status = STATUS[JobStatus(job.status)]
    # A failed job keeps the stage it failed in; the error says why.
    stage = status if status in ("queued", "cancelled", "completed") else row.stage
    return {
        "job_id": row.id,
        "upload_id": row.upload_id,
        "status": status,
        "progress": round(job.progress * 100),
        "stage": stage,
        "message": job.message,
        "error": job.error,
        "log": [line for line in row.log.splitlines() if line][-LOG_LINES:],
        "options": row.options,
        "stats": row.stats,
        "result_url": f"/api/reconstruct/result/{row.id}" if status == "completed" else None,
        "created_at": row.created_at,
        "updated_at": max(row.updated_at, job.updated_at),
    }


async def result_glb(storage: Storage, *, row: ReconstructionJob, job: Job) -> bytes:
    if JobStatus(job.status) != JobStatus.succeeded or not row.result_path:
        raise Conflict(f"The reconstruction is {STATUS[JobStatus(job.status)]}, not completed")
    return await storage.get(row.result_path)


async def convert_result(
    storage: Storage, *, row: ReconstructionJob, job: Job, fmt: str
) -> meshes.MeshFile:
    glb = await result_glb(storage, row=row, job=job)
    return await asyncio.to_thread(meshes.convert, glb, fmt, name="reconstruction")


async def delete(
    session: AsyncSession, storage: Storage, jobs: JobRuntime, *, row: ReconstructionJob, job: Job
) -> None:
    """Stop it if it runs, then remove the rows and the result (the photos stay with the
    upload, which another job may use)."""
    if not JobStatus(job.status).finished:
        with contextlib.suppress(Conflict):  # it finished meanwhile
            await jobs.cancel(job.id)
    keys = sorted({result_key(row.id), *([row.result_path] if row.result_path else [])})
    await session.execute(sql_delete(ReconstructionJob).where(ReconstructionJob.id == row.id))
    await session.execute(sql_delete(Job).where(Job.id == job.id))
    await session.commit()
    await _delete_keys(storage, keys)


async def upload_keys(storage: Storage, *, upload_id: uuid.UUID) -> builtins.list[str]:
    return sorted([obj.key async for obj in storage.list(upload_prefix(upload_id))])
