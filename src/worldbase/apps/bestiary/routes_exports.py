"""Routes: mesh exports of a character's model (OBJ+MTL+texture zipped, PLY, STL, glTF, GLB)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from worldbase.apps.bestiary import exports, service
from worldbase.apps.bestiary.dependencies import ExportForRead, WriteLimit
from worldbase.apps.bestiary.files import serve
from worldbase.apps.bestiary.models import Character, ExportStatus
from worldbase.apps.bestiary.schemas import ExportCreate, ExportRead
from worldbase.core.auth import CurrentUser
from worldbase.core.db import Session
from worldbase.core.errors import Conflict
from worldbase.core.services import JobsDep, StorageDep

router = APIRouter()

CONTENT_TYPES = {
    "obj": "application/zip",
    "ply": "application/x-ply",
    "stl": "model/stl",
    "gltf": "model/gltf+json",
    "glb": "model/gltf-binary",
}


@router.post(
    "/api/export",
    dependencies=[WriteLimit],
    response_model=ExportRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": ExportRead, "description": "An identical export already exists"}},
    summary="Export a character's model to OBJ, PLY, STL, glTF or GLB (a job)",
    description=(
        "Signed-in users. 202 with a queued export; 200 with the existing export when the "
        "same character, format and model were exported (or are being exported) before. "
        "Follow `/api/export/status/{id}`, then download `/api/export/{id}`. A character "
        "without a model answers 409. A new export is a heavy job: a user with "
        "`WORLDBASE_MAX_HEAVY_JOBS_PER_USER` heavy jobs queued or running gets 429 with "
        "`Retry-After`."
    ),
)
async def create_export(
    body: ExportCreate, session: Session, jobs: JobsDep, user: CurrentUser
) -> Any:
    character = await service.get_or_raise(session, character_id=body.character_id)
    export, reused = await exports.create(
        session, jobs, user=user, character=character, fmt=body.format.value
    )
    data = ExportRead.model_validate(export).model_dump(mode="json")
    data["reused"] = reused
    return JSONResponse(data, status_code=200 if reused else 202)


@router.get(
    "/api/export/status/{export_id}",
    response_model=ExportRead,
    summary="An export's status (queued, running, completed, failed)",
)
async def export_status(export: ExportForRead) -> ExportRead:
    return ExportRead.model_validate(export)


@router.get(
    "/api/export/{export_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {"example": "(the file)"}}}},
    summary="Download a finished export (OBJ comes zipped with its MTL and texture)",
)
async def download_export(export: ExportForRead, session: Session, storage: StorageDep) -> Response:
    if export.status != ExportStatus.completed.value or not export.file_path:
        raise Conflict(f"The export is {export.status}, not completed")
    character = await session.get(Character, export.character_id)
    return await serve(
        storage,
        export.file_path,
        media_type=CONTENT_TYPES.get(export.format, "application/octet-stream"),
        filename=exports.download_name(export, character),
    )
