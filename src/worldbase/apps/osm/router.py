"""HTTP routes of the osm app, at its seed's paths.

Reads of objects are public (as OSM itself is); data sources, stats and the validation log
are for administrators; a push is authorized by the source's own token or an admin token.
The object routes are in `routes_objects.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, Request, Response, UploadFile

from worldbase.apps.osm import jobs as osm_jobs
from worldbase.apps.osm import polling, service
from worldbase.apps.osm.dependencies import (
    Limit,
    Offset,
    SourceForAdmin,
    SourceForPush,
    page,
)
from worldbase.apps.osm.events import publish_changes
from worldbase.apps.osm.files import file_suffix
from worldbase.apps.osm.routes_objects import router as objects_router
from worldbase.apps.osm.schemas import (
    INGEST_EXAMPLES,
    DataSourceCreate,
    DataSourceCreated,
    DataSourcePage,
    DataSourceRead,
    DataSourceUpdate,
    IngestResult,
    StatsRead,
    ValidationLogPage,
)
from worldbase.apps.osm.websockets import router as ws_router
from worldbase.core.auth import AdminUser
from worldbase.core.db import Session
from worldbase.core.errors import BadInput
from worldbase.core.http import body_limit
from worldbase.core.job_schemas import JobRead
from worldbase.core.services import HubDep, JobsDep, ServicesDep, StorageDep
from worldbase.core.source_policy import SourcePolicy

router = APIRouter()
router.include_router(objects_router)
# The largest file `POST /data-sources/{id}/import` takes; bigger: `worldbase import osm FILE`.
MAX_IMPORT_BYTES = 2 * 1024**3
CHUNK = 1024 * 1024


# --- data sources (admin) ------------------------------------------------------------------------


@router.get("/data-sources", response_model=DataSourcePage, summary="List data sources (admin)")
async def get_data_sources(
    _admin: AdminUser, session: Session, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    items, total = await service.list_sources(session, limit=limit, offset=offset)
    return page(items, total, limit, offset)


def _policy(request: Request) -> SourcePolicy:
    return SourcePolicy.from_settings(request.app.state.settings)


@router.post(
    "/data-sources",
    response_model=DataSourceCreated,
    status_code=201,
    summary="Create a data source (admin); its push token is shown only in this response",
)
async def create_data_source(
    request: Request, body: DataSourceCreate, _admin: AdminUser, session: Session
) -> dict[str, Any]:
    source, token = await service.create_source(
        session, values=body.model_dump(), policy=_policy(request)
    )
    return {**DataSourceRead.model_validate(source).model_dump(), "token": token}


@router.get("/data-sources/{source_id}", response_model=DataSourceRead, summary="A data source")
async def get_data_source(source: SourceForAdmin) -> Any:
    return source


@router.patch(
    "/data-sources/{source_id}", response_model=DataSourceRead, summary="Update a data source"
)
async def update_data_source(
    request: Request, body: DataSourceUpdate, source: SourceForAdmin, session: Session
) -> Any:
    values = body.model_dump(exclude_unset=True)
    for required in ("name", "connection_info"):
        if required in values and values[required] is None:
            raise BadInput(f"{required} cannot be null")
    return await service.update_source(
        session, source=source, values=values, policy=_policy(request)
    )


@router.delete("/data-sources/{source_id}", status_code=204, summary="Delete a data source")
async def delete_data_source(source: SourceForAdmin, session: Session) -> Response:
    await service.delete_source(session, source=source)
    return Response(status_code=204)


@router.post(
    "/data-sources/{source_id}/activate", response_model=DataSourceRead, summary="Activate"
)
async def activate_data_source(source: SourceForAdmin, session: Session) -> Any:
    return await service.update_source(session, source=source, values={"is_active": True})


@router.post(
    "/data-sources/{source_id}/deactivate",
    response_model=DataSourceRead,
    summary="Deactivate (pushes are refused with 409, polling stops)",
)
async def deactivate_data_source(source: SourceForAdmin, session: Session) -> Any:
    return await service.update_source(session, source=source, values={"is_active": False})


@router.post(
    "/data-sources/{source_id}/token",
    response_model=DataSourceCreated,
    summary="Issue a new push token (the old one stops working)",
)
async def rotate_data_source_token(source: SourceForAdmin, session: Session) -> dict[str, Any]:
    token = await service.rotate_token(session, source=source)
    return {**DataSourceRead.model_validate(source).model_dump(), "token": token}


@router.post(
    "/data-sources/{source_id}/ingest",
    response_model=IngestResult,
    summary="Push OSM JSON or a GeoJSON FeatureCollection (source token or admin)",
    description=(
        "Each element is accepted or rejected on its own: rejected ones are listed in "
        "`errors` and written to the validation log, the others are stored. 422 when the "
        "body is in neither format or no element was accepted (the message gives the first "
        "reason); 409 when the source is inactive. Idempotent by (type, osm_id, version). "
        "An element with more than `WORLDBASE_MAX_FEATURE_VERTICES` positions (a way's "
        "nodes or geometry, a feature's coordinates) is rejected naming the setting."
    ),
)
async def ingest_data(
    source: SourceForPush,
    session: Session,
    hub: HubDep,
    services: ServicesDep,
    payload: Annotated[dict[str, Any], Body(examples=INGEST_EXAMPLES)],
) -> dict[str, Any]:
    report = await service.ingest_payload(
        session,
        source=source,
        payload=payload,
        channel="rest",
        max_vertices=services.settings.worldbase_max_feature_vertices,
    )
    await publish_changes(hub, report)
    summary = report.summary()
    if report.rejected and not report.accepted:
        first = report.errors[0]["reason"] if report.errors else "see errors"
        raise BadInput(f"No element was accepted ({first})", detail=summary)
    return summary


async def _chunks(file: UploadFile) -> AsyncIterator[bytes]:
    # Streamed into storage: a large .osm.pbf is never held in memory whole.
    while chunk := await file.read(CHUNK):
        yield chunk


@router.post(
    "/data-sources/{source_id}/import",
    response_model=JobRead,
    status_code=202,
    summary="Import an .osm, .osm.pbf or .osc file as a job (admin)",
    description=(
        "Returns the job (`GET /api/jobs/{id}` for progress). The file is checked whole "
        "before anything is stored: a malformed file fails the job with nothing written. "
        "Bad elements go to the validation log; `.osc` deletes mark objects deleted. A full "
        "file into an empty objects table is a first load (PostgreSQL: one transaction, "
        "indexes built at the end, object reads wait for it); `create=true` fails the job "
        "unless the table is empty. Files up to 2 GiB (413 above it); bigger ones through "
        "`worldbase import osm FILE`. An import is a heavy job: an admin with "
        "`WORLDBASE_MAX_HEAVY_JOBS_PER_USER` heavy jobs queued or running gets 429 with "
        "`Retry-After` before the file is stored."
    ),
)
@body_limit(MAX_IMPORT_BYTES)
async def import_data_file(
    source: SourceForAdmin,
    admin: AdminUser,
    storage: StorageDep,
    jobs: JobsDep,
    file: Annotated[
        UploadFile,
        File(description=".osm, .osm.pbf or .osc (optionally .gz)", examples=["berlin.osm.pbf"]),
    ],
    create: Annotated[
        bool, Form(description="First load: fail unless the objects table is empty.")
    ] = False,
) -> Any:
    filename = file.filename or "upload"
    suffix = file_suffix(filename)
    await jobs.check_capacity(owner_id=admin.id)  # before the file is stored
    key = f"osm/imports/{uuid.uuid4()}{suffix}"
    await storage.put(key, _chunks(file), content_type="application/octet-stream")
    try:
        return await jobs.enqueue(
            kind=osm_jobs.IMPORT_KIND,
            params={
                "storage_key": key,
                "filename": filename,
                "source_id": source.id,
                "create": create,
            },
            owner_id=admin.id,
            max_attempts=1,
            heavy=True,
        )
    except BaseException:
        await storage.delete(key)
        raise


@router.post(
    "/data-sources/{source_id}/poll",
    response_model=JobRead,
    status_code=202,
    summary="Poll a replication or Overpass source now, as a job (admin)",
    description=(
        "Sources are also polled on their schedule (`connection_info.interval_seconds`). "
        "422 for a source that is not polled or is misconfigured, 409 when it is inactive "
        "or a poll of it is already queued or running. Upstream errors fail the job with "
        "the reason and add a validation-log entry."
    ),
)
async def poll_data_source(
    source: SourceForAdmin, admin: AdminUser, session: Session, jobs: JobsDep
) -> Any:
    return await polling.request_poll(
        session, source=source, enqueue=jobs.enqueue, owner_id=admin.id
    )


# --- admin ---------------------------------------------------------------------------------------


@router.get("/admin/stats", response_model=StatsRead, summary="Tracker statistics (admin)")
async def get_stats(_admin: AdminUser, session: Session) -> dict[str, Any]:
    return await service.stats(session)


@router.get(
    "/admin/validation-log",
    response_model=ValidationLogPage,
    summary="Rejected input, newest first (admin)",
)
async def get_validation_log(
    _admin: AdminUser,
    session: Session,
    source_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await service.list_validation_log(
        session, source_id=source_id, limit=limit, offset=offset
    )
    return page(items, total, limit, offset)


router.include_router(ws_router)
