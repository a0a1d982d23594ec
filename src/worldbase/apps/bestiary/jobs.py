"""Job handlers of the bestiary app: mesh exports and photogrammetry reconstructions.

Both do their heavy work in a worker thread (`asyncio.to_thread`), so the job's own loop
keeps heartbeating and notices a cancel; a reconstruction is stopped through pycolmap's
cancellation token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import update

from worldbase.apps.bestiary import exports, reconstruction
from worldbase.apps.bestiary.events import progress_event, reconstruct_channel
from worldbase.apps.bestiary.exceptions import ReconstructionFailed
from worldbase.apps.bestiary.models import ReconstructionJob
from worldbase.apps.bestiary.pipeline import Cancelled, Options, Pipeline
from worldbase.core.db import utcnow
from worldbase.core.errors import NotFound
from worldbase.core.job_worker import JobCancelled, JobContext

log = logging.getLogger("worldbase.bestiary.jobs")

EXPORT_KIND = exports.EXPORT_KIND
RECONSTRUCT_KIND = reconstruction.RECONSTRUCT_KIND
HEAVY_KINDS = (RECONSTRUCT_KIND, EXPORT_KIND)  # each counts against its owner's concurrent limit


async def export_mesh(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """params: `export_id` (a row of `export_jobs`)."""
    await ctx.progress(0.1, "converting")
    async with ctx.db.sessionmaker() as session:
        return await exports.run(session, ctx.storage, export_id=int(params["export_id"]))


class _Progress:
    """Collects the pipeline's reports (worker thread) for the job's loop to record."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[tuple[str, float, str]] = []
        self.last: tuple[str, float] = ("preparing", 0.0)

    def report(self, stage: str, fraction: float, line: str) -> None:
        with self._lock:
            self._pending.append((stage, fraction, line))
            self.last = (stage, fraction)

    def drain(self) -> list[tuple[str, float, str]]:
        with self._lock:
            pending, self._pending = self._pending, []
        return pending


async def _record(ctx: JobContext, job_id: uuid.UUID, steps: list[tuple[str, float, str]]) -> None:
    if not steps:
        return
    async with ctx.db.sessionmaker() as session:
        row = await session.get(ReconstructionJob, job_id)
        if row is not None:
            lines = [line for line in row.log.splitlines() if line]
            lines += [f"[{stage}] {line}" for stage, _, line in steps]
            row.stage = steps[-1][0]
            row.log = "\n".join(lines[-reconstruction.LOG_LINES :])
            await session.commit()
    for stage, fraction, line in steps:
        event = progress_event(job_id, progress=fraction, stage=stage, line=line)
        ctx.publish(reconstruct_channel(job_id), event)
    stage, fraction, line = steps[-1]
    await ctx.progress(fraction, f"{stage}: {line}")


async def _set_row(ctx: JobContext, job_id: uuid.UUID, **values: Any) -> None:
    async with ctx.db.sessionmaker() as session:
        await session.execute(
            update(ReconstructionJob)
            .where(ReconstructionJob.id == job_id)
            .values(updated_at=utcnow(), **values)
        )
        await session.commit()


async def reconstruct(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """params: `upload_id`, `options` (quality, max_image_size, meshing, target_faces)."""
    job_id = ctx.job_id
    upload_id = uuid.UUID(params["upload_id"])
    raw = dict(params.get("options") or {})
    if ctx.owner_id is None:
        raise NotFound("The user who started this reconstruction no longer exists")
    async with ctx.db.sessionmaker() as session:
        await reconstruction.ensure_row(
            session,
            job_id=job_id,
            owner_id=ctx.owner_id,
            upload_id=upload_id,
            options=raw,
        )
    await _set_row(ctx, job_id, stage="preparing", log="", stats=None, result_path=None)
    options = Options(
        quality=raw.get("quality") or "medium",
        max_image_size=raw.get("max_image_size"),
        meshing=raw.get("meshing") or "poisson",
        target_faces=raw.get("target_faces"),
        threads=max(1, ctx.settings.worldbase_worker_threads),
    )
    progress = _Progress()
    with tempfile.TemporaryDirectory(prefix="bestiary-reconstruct-") as tmp:
        image_dir, work_dir = Path(tmp) / "images", Path(tmp) / "work"
        image_dir.mkdir()
        work_dir.mkdir()
        keys = await reconstruction.upload_keys(ctx.storage, upload_id=upload_id)
        if not keys:
            raise NotFound("The upload's photos are gone (was the upload deleted?)")
        for key in keys:
            (image_dir / key.rsplit("/", 1)[-1]).write_bytes(await ctx.storage.get(key))
        progress.report("preparing", 0.03, f"{len(keys)} photos ready")
        pipeline = Pipeline(image_dir, work_dir, options, progress.report)
        work = asyncio.ensure_future(asyncio.to_thread(pipeline.run))
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=0.5)
                await _record(ctx, job_id, progress.drain())
            await _record(ctx, job_id, progress.drain())
            result = work.result()
        except ReconstructionFailed as exc:
            # The job fails in the stage that could not go on, saying why.
            stage, fraction = progress.last
            failed = (stage, fraction, f"failed: {exc.message}")
            await _record(ctx, job_id, [*progress.drain(), failed])
            raise
        except (asyncio.CancelledError, JobCancelled, Cancelled) as exc:
            # A cancel, or the worker shutting down (the core re-queues the job then).
            pipeline.cancel()
            with contextlib.suppress(BaseException):  # let the thread leave the temp dir
                await asyncio.wait_for(asyncio.shield(work), timeout=60)
            if isinstance(exc, Cancelled):
                raise JobCancelled() from None
            raise
        except BaseException:
            pipeline.cancel()
            raise
    key = reconstruction.result_key(job_id)
    await ctx.storage.put(key, result.glb, content_type="model/gltf-binary")
    await _set_row(ctx, job_id, stage="completed", result_path=key, stats=result.stats)
    await _record(ctx, job_id, [("completed", 1.0, f"stored {len(result.glb)} bytes")])
    return {"result_path": key, **result.stats}


HANDLERS = {EXPORT_KIND: export_mesh, RECONSTRUCT_KIND: reconstruct}
