"""`/api/v1/layers` in SamSyn's shapes (adapter over the samsyn layers service)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from worldbase.apps.samsyn.access import can_edit_layer
from worldbase.apps.samsyn.dependencies import LayerForOwner, LayerForRead, layer_for_read
from worldbase.apps.samsyn.events import after_commit
from worldbase.apps.samsyn.layers import drawn
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.models import Layer, SourceType
from worldbase.apps.samsyn.v1.layer_shapes import (
    LayerCreate,
    LayerResponse,
    LayerUpdate,
    StatusMessage,
    layer_detail,
    layer_responses,
    layer_values,
)
from worldbase.core.auth import CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import Forbidden
from worldbase.core.schemas import PageOffset
from worldbase.core.services import ServicesDep

router = APIRouter(prefix="/layers", tags=["samsyn v1: layers"])

ADMIN_ONLY = "Admin access required to make layers global"


async def layer_for_edit(id: uuid.UUID, session: Session, user: CurrentUser) -> Layer:
    """Readable (else 404) and editable by the caller (else 403), by SamSyn's rule."""
    layer = await layer_for_read(id, session, user)
    if not await can_edit_layer(session, layer=layer, user=user):
        raise Forbidden("Not authorized to edit this layer")
    return layer


@router.get(
    "",
    response_model=list[LayerResponse],
    summary="The layer library: global, public, own layers and those on readable maps",
    description=(
        "A plain array, newest first. `include_my_layers=true` (signed in): only the caller's "
        "own non-global layers made in the layer creator. `features` is empty in lists."
    ),
)
async def list_layers(
    session: Session,
    user: OptionalUser,
    source_type: SourceType | None = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    is_global: bool | None = None,
    search: Annotated[
        str | None, Query(max_length=200, description="In name, description, category")
    ] = None,
    include_my_layers: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    offset: PageOffset = 0,
) -> list[LayerResponse]:
    items, _ = await service_layers.list(
        session,
        user=user,
        source_type=source_type,
        category=category,
        q=(search or "").strip() or None,
        is_global=is_global,
        limit=limit,
        offset=offset,
        drawn_by=user if include_my_layers else None,
        newest_first=True,
    )
    return await layer_responses(session, items)


@router.post(
    "",
    response_model=LayerResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Create a layer; a vector layer's `source_config.geojson` becomes its features",
    description=(
        "Global layers (`is_global`) are for administrators (else 403). Invalid GeoJSON "
        "answers 422 naming the feature, and nothing is written."
    ),
)
async def create_layer(
    body: LayerCreate, session: Session, user: CurrentUser, services: ServicesDep
) -> LayerResponse:
    if body.is_global and not user.is_admin:
        raise Forbidden("Admin access required to create global layers")
    layer = await drawn.create(
        session,
        user=user,
        values=layer_values(body),
        settings=services.settings,
        derived_stats=False,
    )
    return await layer_detail(session, layer)


@router.get("/{id}", response_model=LayerResponse, summary="A layer, its creator and features")
async def get_layer(layer: LayerForRead, session: Session) -> LayerResponse:
    return await layer_detail(session, layer)


@router.put(
    "/{id}",
    response_model=LayerResponse,
    summary="Update a layer (its creator; an `everyone` layer: every signed-in reader)",
    description=(
        "A vector layer's `source_config.geojson` replaces its features (all or nothing). "
        "Changing `is_global` is for administrators (else 403). `source_type` may change when "
        "the layer's configuration (the one sent, else its current one) suits the new type "
        "(else 422 naming why); a vector layer's features must be deleted first."
    ),
)
async def update_layer(
    body: LayerUpdate,
    layer: Annotated[Layer, Depends(layer_for_edit)],
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> LayerResponse:
    if body.is_global is not None and body.is_global != layer.is_global and not user.is_admin:
        raise Forbidden(ADMIN_ONLY)
    change = await drawn.update(
        session,
        layer=layer,
        values=layer_values(body),
        settings=services.settings,
        type_change=True,
    )
    await after_commit(services, change, actor=user)
    return await layer_detail(session, layer)


@router.delete(
    "/{id}",
    response_model=StatusMessage,
    summary="Delete a layer (its creator or an administrator); it leaves every map",
)
async def delete_layer(
    layer: LayerForOwner, session: Session, user: CurrentUser, services: ServicesDep
) -> StatusMessage:
    change = await service_layers.delete(session, layer=layer)
    await after_commit(services, change, actor=user)
    return StatusMessage(message="Layer deleted")
