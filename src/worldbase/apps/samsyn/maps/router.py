"""Routes: maps, their layers and collaborators."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from worldbase.apps.samsyn.access import Role, can_read_layer
from worldbase.apps.samsyn.dependencies import (
    MapAccess,
    MapForEdit,
    MapForMembers,
    MapForOwner,
    MapForRead,
    map_for_members,
    page_of,
)
from worldbase.apps.samsyn.events import Change, after_commit
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.maps import collaborators as service_collaborators
from worldbase.apps.samsyn.maps import service as service_maps
from worldbase.apps.samsyn.models import Map, MapLayer
from worldbase.apps.samsyn.schemas import (
    CollaboratorInvite,
    CollaboratorList,
    CollaboratorRead,
    LayerRead,
    LayerReorder,
    MapCreate,
    MapDetail,
    MapLayerCreate,
    MapLayerRead,
    MapLayerUpdate,
    MapPage,
    MapRead,
    MapUpdate,
)
from worldbase.core.auth import CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import Forbidden, NotFound
from worldbase.core.schemas import PageLimit, PageOffset
from worldbase.core.services import ServicesDep

router = APIRouter()


def map_read(map_: Map, role: Role | None) -> dict[str, Any]:
    data = MapRead.model_validate(map_).model_dump()
    data["role"] = role.name if role is not None else None
    return data


def map_layer_read(item: MapLayer, layer: Any = None) -> dict[str, Any]:
    data = MapLayerRead.model_validate(item).model_dump(exclude={"layer"})
    data["layer"] = LayerRead.model_validate(layer).model_dump() if layer is not None else None
    return data


@router.get("/api/maps", response_model=MapPage, summary="List my maps (owned and shared)")
async def list_maps(
    session: Session,
    user: OptionalUser,
    include: Annotated[
        str | None,
        Query(
            description="`public` adds everyone's public maps; `all` (admins) every map",
            pattern="^(public|all)$",
        ),
    ] = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> dict[str, Any]:
    if include == "all" and (user is None or not user.is_admin):
        raise Forbidden("Only administrators can list every map")
    await service_collaborators.claim_invitations(session, user=user)
    items, total = await service_maps.list(
        session,
        user=user,
        include_public=include == "public" or user is None,
        include_all=include == "all",
        limit=limit,
        offset=offset,
    )
    return page_of(
        [map_read(m, role) for m, role in items], total=total, limit=limit, offset=offset
    )


@router.post(
    "/api/maps",
    response_model=MapRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a map",
)
async def create_map(body: MapCreate, session: Session, user: CurrentUser) -> dict[str, Any]:
    map_ = await service_maps.create(session, user=user, values=body.model_dump())
    return map_read(map_, Role.owner)


async def _detail(session: Session, access: MapAccess) -> dict[str, Any]:
    layers = await service_maps.list_layers(session, map_id=access.map.id)
    data = map_read(access.map, access.role)
    data["layers"] = [map_layer_read(ml, layer) for ml, layer in layers]
    return data


@router.get("/api/maps/{id}", response_model=MapDetail, summary="A map with its ordered layers")
async def get_map(access: MapForRead, session: Session) -> dict[str, Any]:
    await service_maps.mark_opened(session, map_=access.map, user=access.user)
    return await _detail(session, access)


@router.put("/api/maps/{id}", response_model=MapRead, summary="Update a map (owner)")
async def update_map(
    body: MapUpdate, access: MapForOwner, session: Session, services: ServicesDep
) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    for key in ("name", "center_lat", "center_lng", "zoom", "permission_level"):
        if key in values and values[key] is None:
            del values[key]  # not nullable: an explicit null leaves the value as it was
    map_ = await service_maps.update(session, map_=access.map, values=values)
    data = map_read(map_, access.role)
    await after_commit(services, Change("map.updated", data, [map_.id]), actor=access.user)
    return data


@router.delete(
    "/api/maps/{id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a map (owner)"
)
async def delete_map(access: MapForOwner, session: Session, services: ServicesDep) -> Response:
    map_id = access.map.id
    await service_maps.delete(session, map_=access.map)
    await after_commit(
        services, Change("map.deleted", {"id": str(map_id)}, [map_id]), actor=access.user
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- Layers of a map ---------------------------------------------------------------------------


@router.post(
    "/api/maps/{id}/layers",
    response_model=MapLayerRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a layer to a map (409 if it is there already)",
)
async def add_map_layer(
    body: MapLayerCreate, access: MapForEdit, session: Session, services: ServicesDep
) -> dict[str, Any]:
    layer = await service_layers.get_or_raise(session, layer_id=body.layer_id)
    if not await can_read_layer(session, layer=layer, user=access.user):
        raise NotFound("Layer not found")
    item = await service_maps.add_layer(
        session,
        map_=access.map,
        layer=layer,
        display_order=body.display_order,
        is_visible=body.is_visible,
        opacity=body.opacity,
    )
    data = map_layer_read(item, layer)
    await after_commit(services, Change("layer.added", data, [access.map.id]), actor=access.user)
    return data


@router.put(
    "/api/maps/{id}/layers/reorder",
    response_model=MapDetail,
    summary="Reorder a map's layers: every layer id, in the new order (atomic)",
)
async def reorder_map_layers(
    body: LayerReorder, access: MapForEdit, session: Session, services: ServicesDep
) -> dict[str, Any]:
    await service_maps.reorder(session, map_=access.map, layer_ids=body.layer_ids)
    data = await _detail(session, access)
    await after_commit(
        services,
        Change(
            "layers.reordered", {"layer_ids": [str(i) for i in body.layer_ids]}, [access.map.id]
        ),
        actor=access.user,
    )
    return data


@router.put(
    "/api/maps/{id}/layers/{layer_id}",
    response_model=MapLayerRead,
    summary="Show, hide or fade a layer on this map",
)
async def update_map_layer(
    layer_id: uuid.UUID,
    body: MapLayerUpdate,
    access: MapForEdit,
    session: Session,
    services: ServicesDep,
) -> dict[str, Any]:
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    item = await service_maps.update_map_layer(
        session, map_=access.map, layer_id=layer_id, values=values
    )
    data = map_layer_read(item)
    await after_commit(
        services, Change("map_layer.updated", data, [access.map.id]), actor=access.user
    )
    return data


@router.delete(
    "/api/maps/{id}/layers/{layer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a layer from a map (the layer itself stays)",
)
async def remove_map_layer(
    layer_id: uuid.UUID, access: MapForEdit, session: Session, services: ServicesDep
) -> Response:
    await service_maps.remove_layer(session, map_=access.map, layer_id=layer_id)
    await after_commit(
        services,
        Change("layer.removed", {"layer_id": str(layer_id)}, [access.map.id]),
        actor=access.user,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- Collaborators -------------------------------------------------------------------------------


@router.get(
    "/api/maps/{id}/collaborators",
    response_model=CollaboratorList,
    summary="Collaborators and pending invitations (owner and collaborators)",
)
async def list_collaborators(access: MapForMembers, session: Session) -> dict[str, Any]:
    items = await service_collaborators.list(session, map_id=access.map.id)
    return {"items": [CollaboratorRead.model_validate(i) for i in items]}


@router.post(
    "/api/maps/{id}/collaborators",
    response_model=CollaboratorRead,
    status_code=status.HTTP_201_CREATED,
    summary="Invite a user (by id or e-mail) to view or edit the map (owner)",
    description=(
        "An existing user has access at once; an e-mail without an account becomes a pending "
        "invitation that takes effect when that person signs up and lists or opens maps. "
        "Inviting again changes the permission (200). Sharing a private map makes it a "
        "`collaborators` map."
    ),
    responses={200: {"model": CollaboratorRead, "description": "Invited again: permission set"}},
)
async def invite_collaborator(
    body: CollaboratorInvite,
    access: MapForOwner,
    session: Session,
    services: ServicesDep,
    response: Response,
    user: CurrentUser,
) -> CollaboratorRead:
    item, created = await service_collaborators.invite(
        session,
        map_=access.map,
        inviter=user,
        user_id=body.user_id,
        email=str(body.email) if body.email is not None else None,
        permission=body.permission,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    data = CollaboratorRead.model_validate(item)
    await after_commit(
        services,
        Change("collaborator.added", data.model_dump(mode="json"), [access.map.id]),
        actor=user,
    )
    return data


@router.delete(
    "/api/maps/{id}/collaborators/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a collaborator (user id or e-mail) or a pending invitation (e-mail)",
    description="The owner removes anyone; a collaborator may remove themselves (leave).",
)
async def remove_collaborator(
    id: uuid.UUID, user_id: str, session: Session, user: CurrentUser, services: ServicesDep
) -> Response:
    access = await map_for_members(id, session, user)
    itself = user_id.lower() in (str(user.id), (user.email or "").lower())
    if access.role < Role.owner and not itself:
        raise Forbidden("Only the map's owner can remove other collaborators")
    removed = await service_collaborators.remove(session, map_=access.map, who=user_id)
    await after_commit(
        services,
        Change(
            "collaborator.removed",
            {"user_id": str(removed) if removed else None, "email": None if removed else user_id},
            [access.map.id],
        ),
        actor=user,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
