"""Route: import a vector file into a new layer (inline when small, as a job when large)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status

from worldbase.apps.samsyn import jobs as samsyn_jobs
from worldbase.apps.samsyn.features.schemas import ImportQueued
from worldbase.apps.samsyn.imports.service import INLINE_IMPORT_BYTES, import_file
from worldbase.apps.samsyn.layers.router import layer_read
from worldbase.apps.samsyn.models import Editable
from worldbase.apps.samsyn.schemas import LayerRead
from worldbase.apps.samsyn.uploads.router import (
    CategoryForm,
    DescriptionForm,
    EditableForm,
    IsGlobalForm,
    queue_staged,
)
from worldbase.apps.samsyn.uploads.service import save_upload
from worldbase.core.auth import CurrentUser
from worldbase.core.cleanup import work_dir
from worldbase.core.db import Session
from worldbase.core.http import body_limit
from worldbase.core.services import JobsDep, StorageDep
from worldbase.geo.vector_io import MAX_IMPORT_BYTES

router = APIRouter()
BODY_LIMIT = MAX_IMPORT_BYTES + 64 * 1024  # + multipart framing and the form fields


@router.post(
    "/api/layers/import",
    status_code=status.HTTP_201_CREATED,
    response_model=LayerRead,
    responses={202: {"model": ImportQueued, "description": "Large file: imported by a job"}},
    summary="Import GeoJSON, GeoPackage, zipped Shapefile or CSV into a new vector layer",
    description=(
        "The format is recognised from the content, not the name. All or nothing: the first "
        "bad row fails the import (422 naming its row/index) and no layer is created; a feature "
        "with more than `WORLDBASE_MAX_FEATURE_VERTICES` positions is a bad row. Files up "
        f"to {INLINE_IMPORT_BYTES // (1024 * 1024)} MiB are imported during the request (201 "
        "with the layer); larger ones are imported by a job (202; follow `/api/jobs/{id}`, "
        "whose result names the new `layer_id`); a user with "
        "`WORLDBASE_MAX_HEAVY_JOBS_PER_USER` heavy jobs queued or running gets 429 with "
        "`Retry-After`."
    ),
)
@body_limit(BODY_LIMIT)
async def import_layer(
    session: Session,
    user: CurrentUser,
    storage: StorageDep,
    jobs: JobsDep,
    file: Annotated[UploadFile, File(description="The vector file")],
    name: Annotated[str, Form(min_length=1, max_length=255, examples=["Marine Protected Areas"])],
    category: CategoryForm = None,
    description: DescriptionForm = None,
    is_global: IsGlobalForm = False,
    editable: EditableForm = Editable.creator_only,
) -> Any:
    filename = (file.filename or "upload")[:255]
    values = {
        "name": name,
        "category": category,
        "description": description,
        "is_global": is_global,
        "editable": editable.value,
    }
    with work_dir("samsyn-upload") as tmp:
        path = tmp / "upload"
        size = await save_upload(file, path, max_bytes=MAX_IMPORT_BYTES, what="Imports")
        if size <= INLINE_IMPORT_BYTES:
            layer = await import_file(
                session,
                user=user,
                path=path,
                filename=filename,
                values=values,
                max_feature_vertices=jobs.settings.worldbase_max_feature_vertices,
            )
            return layer_read(layer)
        await jobs.check_capacity(owner_id=user.id)  # before the file is stored
        key = f"{samsyn_jobs.IMPORT_PREFIX}/{uuid.uuid4()}"
        await storage.put(key, path.read_bytes(), content_type="application/octet-stream")
    return await queue_staged(
        jobs,
        storage,
        key,
        kind=samsyn_jobs.IMPORT_KIND,
        params={"key": key, "filename": filename, "values": values, "user_id": str(user.id)},
        owner_id=user.id,
        max_attempts=1,
    )
