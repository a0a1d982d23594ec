"""Routes: the layer library and layer configuration."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from worldbase.apps.samsyn.dependencies import LayerForOwner, LayerForRead, page_of
from worldbase.apps.samsyn.events import after_commit
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.layers.service import layer_read
from worldbase.apps.samsyn.models import SourceType
from worldbase.apps.samsyn.schemas import LayerCreate, LayerPage, LayerRead, LayerUpdate
from worldbase.apps.samsyn.wms import recheck as wms_recheck
from worldbase.core.auth import CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.schemas import PageLimit, PageOffset
from worldbase.core.services import ServicesDep

router = APIRouter()


@router.get("/api/layers", response_model=LayerPage, summary="The layer library")
async def list_layers(
    session: Session,
    user: OptionalUser,
    source_type: SourceType | None = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Text search in name, description, category")
    ] = None,
    is_global: Annotated[bool | None, Query(description="Only library (true) or not")] = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> dict[str, Any]:
    items, total = await service_layers.list(
        session,
        user=user,
        source_type=source_type,
        category=category,
        q=q,
        is_global=is_global,
        limit=limit,
        offset=offset,
    )
    return page_of([layer_read(i) for i in items], total=total, limit=limit, offset=offset)


@router.post(
    "/api/layers",
    response_model=LayerRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a layer (WMS, GeoTIFF or vector)",
    description=(
        "A WMS layer's URL must be allowed (`WORLDBASE_SOURCE_ALLOWLIST`, else 403); its "
        "capabilities are read to check every name in `layers` (422 naming the missing ones) "
        "and to fill `bounds` and the `temporal` range where left out. A WMS that cannot "
        "be reached (connection error, HTTP 5xx, timeout) does not stop the save: the layer "
        "is saved as sent, with a `warnings` entry, and its capabilities are read when it is "
        "next read (`GET`, at most once a minute) or saved. A WMS that answers wrongly "
        "(HTTP 4xx, not a capabilities document) is 502. Updates check the same way."
    ),
)
async def create_layer(
    body: LayerCreate, session: Session, user: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    layer = await service_layers.create(
        session, user=user, values=body.model_dump(), settings=services.settings
    )
    return layer_read(layer)


@router.get("/api/layers/{id}", response_model=LayerRead, summary="A layer's configuration")
async def get_layer(layer: LayerForRead, session: Session, services: ServicesDep) -> dict[str, Any]:
    return await wms_recheck.read(session, layer=layer, services=services)


@router.put("/api/layers/{id}", response_model=LayerRead, summary="Update a layer (creator)")
async def update_layer(
    body: LayerUpdate,
    layer: LayerForOwner,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> dict[str, Any]:
    change = await service_layers.update(
        session,
        layer=layer,
        values=body.model_dump(exclude_unset=True),
        settings=services.settings,
    )
    await after_commit(services, change, actor=user)
    return change.data


@router.delete(
    "/api/layers/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a layer (creator); it leaves every map",
)
async def delete_layer(
    layer: LayerForOwner, session: Session, user: CurrentUser, services: ServicesDep
) -> Response:
    change = await service_layers.delete(session, layer=layer)
    await after_commit(services, change, actor=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
