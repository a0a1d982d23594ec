"""HTTP routes of the osm app's objects: lists (a plain array, paging in headers), one
object, its history, and writes (`POST /objects`, `PUT/PATCH/DELETE /objects/{id}`).

Reads are public (as OSM itself is); a write is authorized by an admin token or the token
of the object's data source, and stored as a push from that source (`writes.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from worldbase.apps.osm import service, writes
from worldbase.apps.osm.dependencies import (
    MAX_OFFSET,
    Limit,
    ObjectForRead,
    ObjectForWrite,
    ObjectWriterDep,
    Offset,
    object_filters,
    object_filters_without_type,
    page,
    source_for_new_object,
)
from worldbase.apps.osm.events import publish_changes
from worldbase.apps.osm.models import OSM_TYPES, OSMObject
from worldbase.apps.osm.schemas import (
    HistoryPage,
    OSMObjectCreate,
    OSMObjectRead,
    OSMObjectUpdate,
    OSMType,
)
from worldbase.core.db import Session
from worldbase.core.paging import PAGE_HEADERS, set_page_headers
from worldbase.core.services import HubDep, ServicesDep

router = APIRouter()


# --- objects -----------------------------------------------------------------------------------


_LIST_DESCRIPTION = (
    "A plain JSON array (the seed's `List[OSMObject]`), newest change first; the number of "
    "matches in `X-Total-Count`, the neighbouring pages in an RFC 8288 `Link` header "
    "(`first`, `prev`, `next`, `last`)."
)
_LIST_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"headers": PAGE_HEADERS}}


def _listing(osm_type: str | None = None) -> Callable[..., Awaitable[list[OSMObject]]]:
    """`GET /objects` (`type` a query parameter), or `GET /objects/{osm_type}`."""
    filters_of = object_filters if osm_type is None else object_filters_without_type

    async def get_objects(
        request: Request,
        response: Response,
        session: Session,
        filters: service.ObjectFilters = Depends(filters_of),
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[OSMObject]:
        if osm_type is not None:
            filters.type = osm_type
        items, total = await service.list_objects(
            session, filters=filters, limit=limit, offset=offset
        )
        set_page_headers(
            request, response, total=total, limit=limit, offset=offset, max_offset=MAX_OFFSET
        )
        return items

    return get_objects


router.add_api_route(
    "/objects",
    _listing(),
    methods=["GET"],
    response_model=list[OSMObjectRead],
    summary="List tracked objects (filtered)",
    description=_LIST_DESCRIPTION,
    responses=_LIST_RESPONSES,
)


# `GET /objects/{type}` of the seed's service example. Three fixed paths, declared before
# `/objects/{object_id}`: object ids are UUIDs, so `node`, `way` and `relation` never are one.
for _osm_type in OSM_TYPES:
    router.add_api_route(
        f"/objects/{_osm_type}",
        _listing(_osm_type),
        methods=["GET"],
        name=f"get_{_osm_type}_objects",
        response_model=list[OSMObjectRead],
        summary=f"List tracked {_osm_type}s (`GET /objects/{{type}}`)",
        description=_LIST_DESCRIPTION + f" The same filters as `GET /objects`, type `{_osm_type}`.",
        responses=_LIST_RESPONSES,
    )


@router.get(
    "/objects/osm/{osm_type}/{osm_id}",
    response_model=OSMObjectRead,
    summary="A tracked object by its OSM type and id",
)
async def get_object_by_osm_id(
    osm_type: OSMType,
    osm_id: Annotated[str, Path(max_length=20, pattern="^-?[0-9]+$")],
    session: Session,
) -> OSMObject:
    return await service.get_by_osm_id_or_raise(session, osm_type=osm_type, osm_id=osm_id)


@router.get("/objects/{object_id}", response_model=OSMObjectRead, summary="A tracked object")
async def get_object(obj: ObjectForRead) -> OSMObject:
    return obj


_WRITE_DESCRIPTION = (
    "By an administrator or the data source's own token (`wbsrc_…`): a one-element push "
    "from the object's source through the ingestion path (a new version with its history "
    "row, the source's area and tag filter, the validation log, live events). 401 without "
    "a valid token, 403 for another user or another source's token, 409 when the source "
    "is inactive, 422 for bad fields (WKT/GeoJSON, tags) or an object outside the source's "
    "area or tag filter."
)


@router.post(
    "/objects",
    response_model=OSMObjectRead,
    status_code=201,
    summary="Create an object (admin or the source's token)",
    description=_WRITE_DESCRIPTION
    + " 409 when the (type, osm_id) is tracked already; a deleted one comes back as a new "
    "version. 422 when `source_id` names no data source.",
)
async def create_object(
    body: OSMObjectCreate,
    writer: ObjectWriterDep,
    session: Session,
    hub: HubDep,
    services: ServicesDep,
) -> OSMObject:
    source = await source_for_new_object(session, writer=writer, source_id=body.source_id)
    obj, report = await writes.create_object(
        session,
        source=source,
        values=body.model_dump(),
        max_vertices=services.settings.worldbase_max_feature_vertices,
    )
    await publish_changes(hub, report)
    return obj


_UPDATE_DESCRIPTION = (
    _WRITE_DESCRIPTION
    + " Fields left out (or null) keep their values; `tags` replaces all the tags. A write "
    "that changes nothing makes no version; a deleted object comes back. PUT and PATCH "
    "take the same body (the seed's `OSMObjectUpdate`)."
)


# PUT and PATCH: one function (the decorator nearest it is registered first).
@router.patch(
    "/objects/{object_id}",
    response_model=OSMObjectRead,
    summary="Update an object's tags or geometry (admin or the source's token)",
    description=_UPDATE_DESCRIPTION,
)
@router.put(
    "/objects/{object_id}",
    response_model=OSMObjectRead,
    summary="Update an object (admin or the source's token)",
    description=_UPDATE_DESCRIPTION,
    name="replace_object",
)
async def update_object(
    target: ObjectForWrite, body: OSMObjectUpdate, session: Session, services: ServicesDep
) -> OSMObject:
    obj, source = target
    updated, report = await writes.update_object(
        session,
        obj=obj,
        source=source,
        tags=body.tags,
        geom=body.geom,
        max_vertices=services.settings.worldbase_max_feature_vertices,
    )
    await publish_changes(services.hub, report)
    return updated


@router.delete(
    "/objects/{object_id}",
    status_code=204,
    summary="Delete an object (admin or the source's token)",
    description=_WRITE_DESCRIPTION
    + " The object is marked deleted (a `delete` version), as when any source deletes it; "
    "again: 204, nothing changes. `include_deleted=true` lists it.",
)
async def delete_object(target: ObjectForWrite, session: Session, hub: HubDep) -> Response:
    obj, source = target
    report = await writes.delete_object(session, obj=obj, source=source)
    await publish_changes(hub, report)
    return Response(status_code=204)


@router.get(
    "/objects/{object_id}/history",
    response_model=HistoryPage,
    summary="Every stored version of an object, newest first",
)
async def get_object_history(
    obj: ObjectForRead, session: Session, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    items, total = await service.list_history(session, object_id=obj.id, limit=limit, offset=offset)
    return page(items, total, limit, offset)
