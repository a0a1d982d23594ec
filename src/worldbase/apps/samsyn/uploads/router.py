"""Route: upload a GeoTIFF; a job converts it to a COG in storage and creates the layer."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import JSONResponse

from worldbase.apps.samsyn import jobs as samsyn_jobs
from worldbase.apps.samsyn.features.schemas import ImportQueued
from worldbase.apps.samsyn.models import Editable
from worldbase.apps.samsyn.settings import SamsynSettings
from worldbase.apps.samsyn.uploads import service as service_upload
from worldbase.core.auth import CurrentUser
from worldbase.core.cleanup import staging, work_dir
from worldbase.core.errors import BadInput
from worldbase.core.http import body_limit
from worldbase.core.jobs import JobRuntime
from worldbase.core.services import JobsDep, ServicesDep
from worldbase.core.storage import Storage

router = APIRouter()
PATH = "/api/layers/upload"

# Form fields of a new layer shared by both file routes (a GeoTIFF here, a vector file in
# `imports`), with `LayerCreate`'s limits.
CategoryForm = Annotated[str | None, Form(max_length=100)]
DescriptionForm = Annotated[str | None, Form(max_length=10_000)]
IsGlobalForm = Annotated[bool, Form()]
EditableForm = Annotated[Editable, Form()]


def _json_object(value: str | None, field: str) -> dict[str, Any]:
    if value is None or not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise BadInput(
            f"{field} must be a JSON object",
            detail=[{"loc": ["body", field], "msg": "not a JSON object", "type": "json"}],
        )
    return parsed


@router.post(
    PATH,
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportQueued,
    summary="Upload a GeoTIFF; a job converts it to a COG and creates the GeoTIFF layer",
    description=(
        "Multipart form: `file` (a GeoTIFF in any projection, striped or tiled) and the layer's "
        "`name`, `description`, `category`, `is_global`, `editable`, optionally `tile_params` "
        '(a JSON object of TiTiler parameters, e.g. `{"rescale": "0,30", "colormap_name": '
        '"viridis"}`), `style_config`, `legend_config` and `metadata` (JSON objects) and '
        "`overview_resampling`. The file is recognised by its content: not a TIFF is 415; a "
        "TIFF rasterio cannot read, corrupt, truncated or without a coordinate reference "
        "system is 422; larger than `WORLDBASE_UPLOAD_MAX_BYTES`, or with more pixels (width x "
        "height x bands) than `WORLDBASE_UPLOAD_MAX_PIXELS` or more decompressed bytes than "
        "`WORLDBASE_UPLOAD_MAX_DECOMPRESSED_BYTES` (read from its header) is 413; a user "
        "with `WORLDBASE_MAX_HEAVY_JOBS_PER_USER` heavy jobs queued or running gets 429 with "
        "`Retry-After` — and then nothing is stored. Otherwise 202: the job "
        "(`/api/jobs/{id}`, the uploader's) converts the file "
        "to a COG (DEFLATE, 512 px blocks, internal overviews, its own projection) in "
        "Worldbase's storage, reporting progress, and its result names the new `layer_id`, "
        "whose `source_config.cogUrl` is `storage://samsyn/cogs/<id>.tif`."
    ),
)
@body_limit(service_upload.MAX_BODY_BYTES)
async def upload_layer(
    user: CurrentUser,
    services: ServicesDep,
    jobs: JobsDep,
    file: Annotated[UploadFile, File(description="The GeoTIFF")],
    name: Annotated[str, Form(min_length=1, max_length=255, examples=["North Sea bathymetry"])],
    category: CategoryForm = None,
    description: DescriptionForm = None,
    is_global: IsGlobalForm = False,
    editable: EditableForm = Editable.creator_only,
    tile_params: Annotated[
        str | None, Form(max_length=10_000, examples=['{"rescale": "-200,0"}'])
    ] = None,
    style_config: Annotated[str | None, Form(max_length=100_000)] = None,
    legend_config: Annotated[str | None, Form(max_length=100_000)] = None,
    metadata: Annotated[str | None, Form(max_length=100_000)] = None,
    overview_resampling: Annotated[
        Literal["nearest", "average", "bilinear", "cubic", "mode"], Form()
    ] = "nearest",
) -> Any:
    values: dict[str, Any] = {
        "name": name,
        "category": category,
        "description": description,
        "is_global": is_global,
        "editable": editable.value,
        "style_config": _json_object(style_config, "style_config"),
        "legend_config": _json_object(legend_config, "legend_config"),
        "metadata": _json_object(metadata, "metadata"),
    }
    params = _json_object(tile_params, "tile_params")
    if params:
        values["source_config"] = {"tileParams": params}
    service_upload.check_values(values)
    await jobs.check_capacity(owner_id=user.id)  # before the file is described and stored
    settings = services.settings.app(SamsynSettings)
    limits = service_upload.UploadLimits(
        max_pixels=settings.upload_max_pixels,
        max_decompressed_bytes=settings.upload_max_decompressed_bytes,
    )
    storage = services.storage
    with work_dir("samsyn-upload") as tmp:
        path = tmp / "upload.tif"
        size = await service_upload.save_upload(file, path, max_bytes=settings.upload_max_bytes)
        service_upload.sniff(path)
        summary = await service_upload.describe(path, limits=limits)
        key = service_upload.upload_key()
        await service_upload.store(storage, path, key)
    return await queue_staged(
        jobs,
        storage,
        key,
        kind=samsyn_jobs.COG_KIND,
        params={
            "upload_key": key,
            "filename": (file.filename or "upload.tif")[:255],
            "size": size,
            "summary": summary.as_dict(),
            "bounds": summary.bounds,
            "values": values,
            "overview_resampling": overview_resampling,
            "user_id": str(user.id),
        },
        owner_id=user.id,
        max_attempts=2,
    )


async def queue_staged(
    jobs: JobRuntime,
    storage: Storage,
    key: str,
    *,
    kind: str,
    params: dict[str, Any],
    owner_id: uuid.UUID,
    max_attempts: int,
) -> JSONResponse:
    """Queue a heavy job that owns the stored upload `key` (deleted if queueing fails): 202
    pointing to the job."""
    try:
        job = await jobs.enqueue(
            kind=kind,
            params=params | staging(key),
            owner_id=owner_id,
            max_attempts=max_attempts,
            heavy=True,
        )
    except BaseException:
        await storage.delete(key)
        raise
    body = {"job_id": str(job.id), "status": "queued", "status_url": f"/api/jobs/{job.id}"}
    return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED)
