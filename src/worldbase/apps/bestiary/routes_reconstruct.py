"""Routes: photogrammetry (NodeODM-like): upload photos, start, follow, fetch, cancel, delete.

Uploads, jobs and results belong to the user who made them; anyone else gets 404 (admins see
everything). The status follows the core job (`queued`, `running`, `completed`, `failed`,
`cancelled`) with the pipeline's stage and log tail.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Response, UploadFile, WebSocket, status

from worldbase.apps.bestiary import reconstruction, service, uploads
from worldbase.apps.bestiary.dependencies import JobForOwner, UploadLimit, WriteLimit
from worldbase.apps.bestiary.events import is_final, reconstruct_channel
from worldbase.apps.bestiary.files import CHUNK
from worldbase.apps.bestiary.schemas import (
    AttachResult,
    CharacterRead,
    MeshFormat,
    ReconstructCreate,
    ReconstructQueued,
    ReconstructStatus,
    UploadRead,
)
from worldbase.apps.bestiary.settings import BestiarySettings
from worldbase.core import users
from worldbase.core.auth import AdminUser, CurrentUser, authenticate_token
from worldbase.core.db import Session
from worldbase.core.errors import BadInput, DomainError, NotAuthenticated, NotFound, PayloadTooLarge
from worldbase.core.http import body_limit
from worldbase.core.jobs import job_channels, job_event
from worldbase.core.live_socket import AccessGuard, close_refused, serve_websocket
from worldbase.core.realtime import user_channel
from worldbase.core.services import CacheDep, JobsDep, ServicesDep, StorageDep, services_of

router = APIRouter()

# The body cap of the upload route; BESTIARY_UPLOAD_MAX_BYTES (below it) is checked while reading.
UPLOAD_BODY_CAP = 2 * 1024 * 1024 * 1024
MAX_FILES = 1000


async def _save(files: list[UploadFile], directory: Path, limit: int) -> list[tuple[str, Path]]:
    saved, total = [], 0
    for index, upload in enumerate(files):
        path = directory / f"upload_{index:04d}"
        with path.open("wb") as out:
            while chunk := await upload.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise PayloadTooLarge(
                        f"The upload is larger than {limit} bytes", detail={"limit": limit}
                    )
                out.write(chunk)
        saved.append(((upload.filename or f"file {index + 1}")[:200], path))
    return saved


@router.post(
    "/api/reconstruct/upload",
    dependencies=[UploadLimit],
    response_model=UploadRead,
    status_code=status.HTTP_201_CREATED,
    summary="Upload photos, a zip of photos, or a video for a reconstruction",
    description=(
        "Multipart field `files`, repeatable. Types are sniffed from the content: images "
        "(anything Pillow reads), zip archives of images (limits: total uncompressed size, "
        "entry count, compression ratio; names leaving the archive are refused), videos "
        "(MP4/MOV/MKV/WebM/AVI; `BESTIARY_VIDEO_FRAMES` evenly spaced frames). At least 3 "
        "photos; `BESTIARY_MAX_IMAGES` at most. Nothing is stored unless everything is valid."
    ),
)
@body_limit(UPLOAD_BODY_CAP)
async def upload_photos(
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
    files: Annotated[
        list[UploadFile],
        File(description="Photos, zips or a video", examples=[["IMG_0001.jpg", "IMG_0002.jpg"]]),
    ],
) -> UploadRead:
    settings = services.settings.app(BestiarySettings)
    if len(files) > MAX_FILES:
        raise BadInput(f"At most {MAX_FILES} files per upload")
    limits = uploads.Limits(
        max_images=settings.max_images,
        zip_max_bytes=settings.zip_max_bytes,
        video_frames=settings.video_frames,
    )
    with tempfile.TemporaryDirectory(prefix="bestiary-upload-") as tmp:
        saved = await _save(files, Path(tmp), settings.upload_max_bytes)
        intake = await asyncio.to_thread(uploads.collect, saved, limits)
    upload = await reconstruction.create_upload(session, services.storage, user=user, intake=intake)
    return UploadRead(
        upload_id=upload.id,
        image_count=upload.image_count,
        source=upload.source,
        total_bytes=upload.total_bytes,
    )


@router.delete(
    "/api/reconstruct/upload/{upload_id}",
    dependencies=[WriteLimit],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an upload's photos (finished jobs keep their results; 409 while one runs)",
)
async def delete_upload(
    upload_id: uuid.UUID, session: Session, user: CurrentUser, storage: StorageDep
) -> Response:
    upload = await reconstruction.get_upload_or_raise(session, upload_id=upload_id, user=user)
    await reconstruction.delete_upload(session, storage, upload=upload)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/reconstruct/process",
    dependencies=[UploadLimit],
    response_model=ReconstructQueued,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a reconstruction of an upload (a job)",
)
async def process(
    body: ReconstructCreate, session: Session, user: CurrentUser, jobs: JobsDep
) -> ReconstructQueued:
    upload = await reconstruction.get_upload_or_raise(session, upload_id=body.upload_id, user=user)
    row = await reconstruction.create(
        session, jobs, user=user, upload=upload, options=body.options.model_dump(mode="json")
    )
    return ReconstructQueued(job_id=row.id, status="queued")


@router.get(
    "/api/reconstruct/status/{job_id}",
    response_model=ReconstructStatus,
    summary="A reconstruction's status, progress (0-100), stage and log tail",
)
async def job_status(owned: JobForOwner) -> dict[str, Any]:
    return reconstruction.status_document(owned.row, owned.job)


@router.get(
    "/api/reconstruct/result/{job_id}",
    response_class=Response,
    responses={200: {"content": {"model/gltf-binary": {"example": "(binary glTF)"}}}},
    summary="The reconstructed mesh (GLB by default; ?format=obj|ply|stl|gltf)",
)
async def job_result(
    owned: JobForOwner, storage: StorageDep, format: MeshFormat = MeshFormat.glb
) -> Response:
    made = await reconstruction.convert_result(
        storage, row=owned.row, job=owned.job, fmt=format.value
    )
    filename = f"reconstruction-{owned.row.id}.{made.extension}"
    return Response(
        made.data,
        media_type=made.content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/api/reconstruct/result/{job_id}/attach",
    dependencies=[WriteLimit],
    response_model=CharacterRead,
    summary="Use a finished reconstruction as a character's 3D model (admins)",
)
async def attach_result(
    body: AttachResult,
    owned: JobForOwner,
    _: AdminUser,
    session: Session,
    storage: StorageDep,
    cache: CacheDep,
) -> CharacterRead:
    character = await service.get_or_raise(session, character_id=body.character_id)
    glb = await reconstruction.result_glb(storage, row=owned.row, job=owned.job)
    character = await service.set_model_glb(session, storage, character=character, glb=glb)
    await service.invalidate(cache, character_id=character.id)
    return CharacterRead.model_validate(character)


@router.post(
    "/api/reconstruct/{job_id}/cancel",
    dependencies=[WriteLimit],
    response_model=ReconstructStatus,
    summary="Cancel a queued or running reconstruction (409 when it has finished)",
)
async def cancel(owned: JobForOwner, jobs: JobsDep, session: Session) -> dict[str, Any]:
    job = await jobs.cancel(owned.job.id)
    await session.refresh(owned.row)
    return reconstruction.status_document(owned.row, job)


@router.delete(
    "/api/reconstruct/{job_id}",
    dependencies=[WriteLimit],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a reconstruction and its result (a running one is cancelled first)",
)
async def delete_job(
    owned: JobForOwner, session: Session, storage: StorageDep, jobs: JobsDep
) -> Response:
    await reconstruction.delete(session, storage, jobs, row=owned.row, job=owned.job)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.websocket("/api/reconstruct/{job_id}/events")
async def job_events(
    websocket: WebSocket,
    job_id: uuid.UUID,
    token: Annotated[str | None, Query(max_length=4096)] = None,
) -> None:
    """The job's status document, then every state change (`type: job`) and pipeline step
    (`type: reconstruct.progress`); closes after the final state. `?token=` carries the
    bearer token. Close codes: 4401 unauthenticated, 4404 no such job (or not yours), 4403
    the account was disabled or deleted while connected."""
    await websocket.accept()
    services = services_of(websocket)
    try:
        if not token:
            raise NotAuthenticated("Not authenticated")
        async with services.db.sessionmaker() as session:
            user = await authenticate_token(session, token=token, settings=services.settings)
            row, job = await reconstruction.get_or_raise(session, job_id=job_id, user=user)
    except DomainError as exc:  # 4401, 4404 (no such job, or not yours)
        await close_refused(websocket, exc)
        return
    subscription = services.hub.subscribe(
        job_channels(job)[0], reconstruct_channel(job_id), user_channel(user.id)
    )
    await subscription.ready(within=5)
    async with services.db.sessionmaker() as session:
        row, job = await reconstruction.get_or_raise(session, job_id=job_id, user=user)
    document = ReconstructStatus.model_validate(reconstruction.status_document(row, job))
    initial: list[dict[str, Any]] = [{"type": "status", **document.model_dump(mode="json")}]
    if job_event(job)["status"] in ("succeeded", "failed", "cancelled"):
        initial.append(job_event(job))

    async def still_visible() -> bool:
        async with services.db.sessionmaker() as session:
            fresh = await users.get_active(session, user_id=user.id)
            if fresh is None:
                return False
            try:
                await reconstruction.get_or_raise(session, job_id=job_id, user=fresh)
            except NotFound:
                return False
        return True

    guard = AccessGuard(check=still_visible, every=services.settings.worldbase_ws_recheck_seconds)
    await serve_websocket(websocket, subscription, initial=initial, until=is_final, guard=guard)
