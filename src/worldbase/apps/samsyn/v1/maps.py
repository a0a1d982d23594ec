"""`/api/v1/maps` in SamSyn's shapes (adapter over the samsyn maps and collaborators
services; the translation of names and units is in `map_shapes`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from worldbase.apps.samsyn.access import Role
from worldbase.apps.samsyn.dependencies import (
    MapAccess,
    MapForEdit,
    MapForOwner,
    MapForRead,
    map_for_read,
)
from worldbase.apps.samsyn.events import Change, after_commit
from worldbase.apps.samsyn.maps import collaborators as service_collaborators
from worldbase.apps.samsyn.maps import service as service_maps
from worldbase.apps.samsyn.maps.router import map_read
from worldbase.apps.samsyn.models import CollaboratorPermission
from worldbase.apps.samsyn.schemas import CollaboratorRead
from worldbase.apps.samsyn.v1 import map_layers
from worldbase.apps.samsyn.v1.layer_shapes import StatusMessage
from worldbase.apps.samsyn.v1.map_shapes import (
    ROLE_PERMISSION,
    CollaboratorCreate,
    CollaboratorRole,
    CollaboratorUpdate,
    MapCollaboratorResponse,
    MapCreate,
    MapResponse,
    MapUpdate,
    collaborator_response,
    map_detail,
    map_list,
    map_values,
)
from worldbase.core import users
from worldbase.core.auth import CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import DomainError, Forbidden, NotFound
from worldbase.core.schemas import PageOffset
from worldbase.core.services import ServicesDep

router = APIRouter(prefix="/maps", tags=["samsyn v1: maps"])


@router.get(
    "",
    response_model=list[MapResponse],
    summary="Maps the caller owns or collaborates on, and every public map",
    description="A plain array, most recently changed first; anonymous callers get public maps.",
)
async def list_maps(
    session: Session,
    user: OptionalUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: PageOffset = 0,
) -> list[MapResponse]:
    await service_collaborators.claim_invitations(session, user=user)
    listings = await service_maps.list_in_full(
        session, user=user, include_public=True, limit=limit, offset=offset
    )
    return map_list(listings, user)


@router.post(
    "",
    response_model=MapResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Create a map (view and edit permission default to private)",
)
async def create_map(body: MapCreate, session: Session, user: CurrentUser) -> MapResponse:
    map_ = await service_maps.create(session, user=user, values=map_values(body))
    return await map_detail(session, map_, Role.owner, user)


@router.get("/{id}", response_model=MapResponse, summary="A map with its layers and collaborators")
async def get_map(access: MapForRead, session: Session) -> MapResponse:
    await service_maps.mark_opened(session, map_=access.map, user=access.user)
    return await map_detail(session, access.map, access.role, access.user)


@router.put("/{id}", response_model=MapResponse, summary="Update a map (owner and editors)")
async def update_map(
    body: MapUpdate, access: MapForEdit, session: Session, services: ServicesDep
) -> MapResponse:
    map_ = await service_maps.update(session, map_=access.map, values=map_values(body))
    change = Change("map.updated", map_read(map_, access.role), [map_.id])
    await after_commit(services, change, actor=access.user)
    return await map_detail(session, map_, access.role, access.user)


@router.delete("/{id}", response_model=StatusMessage, summary="Delete a map (owner)")
async def delete_map(access: MapForOwner, session: Session, services: ServicesDep) -> StatusMessage:
    map_id = access.map.id
    await service_maps.delete(session, map_=access.map)
    change = Change("map.deleted", {"id": str(map_id)}, [map_id])
    await after_commit(services, change, actor=access.user)
    return StatusMessage(message="Map deleted")


# --- Collaborators -------------------------------------------------------------------------


@router.get(
    "/{id}/collaborators",
    response_model=list[MapCollaboratorResponse],
    summary="A map's collaborators (empty for readers who are not members)",
)
async def list_collaborators(access: MapForRead, session: Session) -> list[MapCollaboratorResponse]:
    return (await map_detail(session, access.map, access.role, access.user)).collaborators


async def _may_invite(session: Session, access: MapAccess, role: CollaboratorRole) -> None:
    """SamSyn's rule: the owner invites anyone; an editor collaborator invites viewers,
    whatever the map's `edit_permission` (it is their role, not their editing right)."""
    if access.role == Role.owner:
        return
    assert access.user is not None
    row = await service_collaborators.get(session, map_id=access.map.id, user_id=access.user.id)
    if row is None or row.permission != CollaboratorPermission.edit:
        raise Forbidden("Not authorized to add collaborators")
    if role == CollaboratorRole.editor:
        raise Forbidden("Only owner can add editors")


@router.post(
    "/{id}/collaborators",
    response_model=MapCollaboratorResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Add a signed-up user, by e-mail, as viewer or editor",
    description=(
        "404 for an e-mail without an account; 400 for the owner or an existing collaborator. "
        "Sharing a private map makes it a `collaborators` map."
    ),
)
async def add_collaborator(
    id: uuid.UUID,
    body: CollaboratorCreate,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> MapCollaboratorResponse:
    access = await map_for_read(id, session, user)
    await _may_invite(session, access, body.role)
    email = users.normalize_email(body.email) or ""
    target = await users.get_by_email(session, email=email)
    if target is None:
        raise NotFound(
            f"User with email '{body.email}' not found. Please ensure the user has signed up."
        )
    existing = await service_collaborators.get(session, map_id=id, user_id=target.id)
    if target.id == access.map.created_by or existing is not None:
        raise DomainError(
            f"User '{body.email}' is already a collaborator or cannot be added to this map"
        )
    item, _ = await service_collaborators.invite(
        session,
        map_=access.map,
        inviter=user,
        user_id=target.id,
        email=None,
        permission=ROLE_PERMISSION[body.role],
    )
    data = CollaboratorRead.model_validate(item).model_dump(mode="json")
    await after_commit(services, Change("collaborator.added", data, [id]), actor=user)
    return collaborator_response(item, target)


@router.put(
    "/{id}/collaborators/{user_id}",
    response_model=MapCollaboratorResponse,
    summary="Change a collaborator's role (owner)",
)
async def update_collaborator(
    user_id: uuid.UUID,
    body: CollaboratorUpdate,
    access: MapForOwner,
    session: Session,
    services: ServicesDep,
) -> MapCollaboratorResponse:
    row = await service_collaborators.update(
        session, map_=access.map, user_id=user_id, permission=ROLE_PERMISSION[body.role]
    )
    data = {"user_id": str(user_id), "permission": row.permission.value}
    change = Change("collaborator.updated", data, [access.map.id])
    await after_commit(services, change, actor=access.user)
    return collaborator_response(row, await users.get(session, user_id=user_id))


@router.delete(
    "/{id}/collaborators/{user_id}",
    response_model=StatusMessage,
    summary="Remove a collaborator (owner)",
)
async def remove_collaborator(
    user_id: uuid.UUID, access: MapForOwner, session: Session, services: ServicesDep
) -> StatusMessage:
    await service_collaborators.remove(session, map_=access.map, who=str(user_id))
    data = {"user_id": str(user_id), "email": None}
    change = Change("collaborator.removed", data, [access.map.id])
    await after_commit(services, change, actor=access.user)
    return StatusMessage(message="Collaborator removed")


router.include_router(map_layers.router)
