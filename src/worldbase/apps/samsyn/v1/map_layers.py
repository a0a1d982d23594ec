"""`/api/v1/maps/{id}/layers` in SamSyn's shapes (adapter over the samsyn maps service)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from worldbase.apps.samsyn.access import can_read_layer
from worldbase.apps.samsyn.dependencies import MapForEdit
from worldbase.apps.samsyn.events import Change, after_commit
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.maps import service as service_maps
from worldbase.apps.samsyn.maps.router import map_layer_read
from worldbase.apps.samsyn.v1.layer_shapes import StatusMessage
from worldbase.apps.samsyn.v1.map_shapes import (
    MapLayerCreate,
    MapLayerReorder,
    MapLayerResponse,
    MapLayerUpdate,
    map_layer_response,
    map_layer_values,
)
from worldbase.core.db import Session
from worldbase.core.errors import Conflict, DomainError, NotFound
from worldbase.core.services import ServicesDep

router = APIRouter()


@router.post(
    "/{id}/layers",
    response_model=MapLayerResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Add a layer to a map (editors); 400 if it is unknown or on the map already",
    description=(
        "The layer: one the caller can read, or one of the map owner's own. `order` is stored "
        "as given (default: after the last); layers sort by it, then by when they were added."
    ),
)
async def add_map_layer(
    body: MapLayerCreate, access: MapForEdit, session: Session, services: ServicesDep
) -> MapLayerResponse:
    layer = await service_layers.get_or_raise(session, layer_id=body.layer_id)
    # The map's editors may also add the map owner's own layers (the owner shares the map
    # with them); never another user's layer they cannot read.
    owners = layer.created_by == access.map.created_by
    if not owners and not await can_read_layer(session, layer=layer, user=access.user):
        raise NotFound("Layer not found")
    values = map_layer_values(body)
    try:
        item = await service_maps.add_layer(
            session,
            map_=access.map,
            layer=layer,
            display_order=values.get("display_order"),
            is_visible=values["is_visible"],
            opacity=values["opacity"],
            verbatim=True,
        )
    except Conflict as exc:  # SamSyn answers 400 here
        raise DomainError("Layer not found or already in map") from exc
    change = Change("layer.added", map_layer_read(item, layer), [access.map.id])
    await after_commit(services, change, actor=access.user)
    return map_layer_response(item)


async def _layers(session: Session, map_id: uuid.UUID) -> list[MapLayerResponse]:
    return [
        map_layer_response(ml) for ml, _ in await service_maps.list_layers(session, map_id=map_id)
    ]


@router.put(
    "/{id}/layers/reorder",
    response_model=list[MapLayerResponse],
    summary="Reorder a map's layers (editors): every layer with its new order, atomically",
)
async def reorder_map_layers(
    body: MapLayerReorder, access: MapForEdit, session: Session, services: ServicesDep
) -> list[MapLayerResponse]:
    ordered = sorted(body.layer_orders, key=lambda item: item.order)
    layer_ids = [item.layer_id for item in ordered]
    await service_maps.reorder(
        session,
        map_=access.map,
        layer_ids=layer_ids,
        orders=[item.order for item in ordered],
    )
    data = {"layer_ids": [str(i) for i in layer_ids]}
    await after_commit(
        services, Change("layers.reordered", data, [access.map.id]), actor=access.user
    )
    return await _layers(session, access.map.id)


@router.put(
    "/{id}/layers/{layer_id}",
    response_model=MapLayerResponse,
    summary="Show, hide, fade or move a layer on this map (editors)",
)
async def update_map_layer(
    layer_id: uuid.UUID,
    body: MapLayerUpdate,
    access: MapForEdit,
    session: Session,
    services: ServicesDep,
) -> MapLayerResponse:
    item = await service_maps.update_map_layer(
        session, map_=access.map, layer_id=layer_id, values=map_layer_values(body), verbatim=True
    )
    change = Change("map_layer.updated", map_layer_read(item), [access.map.id])
    await after_commit(services, change, actor=access.user)
    return map_layer_response(item)


@router.delete(
    "/{id}/layers/{layer_id}",
    response_model=StatusMessage,
    summary="Remove a layer from a map (editors); the layer itself stays",
)
async def remove_map_layer(
    layer_id: uuid.UUID, access: MapForEdit, session: Session, services: ServicesDep
) -> StatusMessage:
    await service_maps.remove_layer(session, map_=access.map, layer_id=layer_id, verbatim=True)
    data = {"layer_id": str(layer_id)}
    await after_commit(services, Change("layer.removed", data, [access.map.id]), actor=access.user)
    return StatusMessage(message="Layer removed from map")
