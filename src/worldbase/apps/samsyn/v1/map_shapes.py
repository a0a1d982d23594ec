"""SamSyn's map shapes (`MapCreate`, `MapUpdate`, `MapResponse`, collaborators, map layers)
and their translation from ours:

- `view_permission` is our `permission_level`; `edit_permission` and `map_metadata` are ours
  too (same names);
- a collaborator's `role` viewer/editor is our `permission` view/edit;
- a map layer's `order`, `visible`, `opacity` 0-100 are our `display_order`, `is_visible`,
  `opacity` 0.0-1.0;
- `user_role` is the caller's role (owner, editor, viewer; a public reader is a viewer).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, and_, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.access import Role
from worldbase.apps.samsyn.maps import service as service_maps
from worldbase.apps.samsyn.maps.collaborators import Collaborator
from worldbase.apps.samsyn.models import (
    CollaboratorPermission,
    Map,
    MapCollaborator,
    MapLayer,
    PermissionLevel,
)
from worldbase.apps.samsyn.v1.layer_shapes import (
    LAYER_EXAMPLE,
    LayerResponse,
    layer_response,
)
from worldbase.apps.samsyn.v1.shapes import UserResponse, user_response
from worldbase.core.models import User
from worldbase.core.schemas import UTCDateTime

_ID = "7a1e2b3c-4d5e-4f60-8a9b-0c1d2e3f4a5b"
_AT = "2025-01-01T12:00:00Z"
_MAP_BODY: dict[str, Any] = {
    "name": "Baltic offshore wind",
    "description": "Planning scenario 2030",
    "center_lat": 58.5,
    "center_lng": 19.0,
    "zoom": 6,
    "map_metadata": {"scenario": "2030"},
    "view_permission": "collaborators",
    "edit_permission": "collaborators",
}
_USER = LAYER_EXAMPLE["creator"]
COLLABORATOR_EXAMPLE = {
    "id": _ID,
    "user_id": _USER["id"],
    "role": "editor",
    "created_at": _AT,
    "user": _USER,
}
MAP_LAYER_EXAMPLE = {
    "id": _ID,
    "layer_id": LAYER_EXAMPLE["id"],
    "order": 0,
    "visible": True,
    "opacity": 80,
    "created_at": _AT,
    "layer": LAYER_EXAMPLE,
}


class CollaboratorRole(enum.StrEnum):
    viewer = "viewer"
    editor = "editor"


ROLE_PERMISSION = {
    CollaboratorRole.viewer: CollaboratorPermission.view,
    CollaboratorRole.editor: CollaboratorPermission.edit,
}
PERMISSION_ROLE = {p: r for r, p in ROLE_PERMISSION.items()}


class MapCreate(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    center_lat: float = Field(default=0.0, ge=-90, le=90)
    center_lng: float = Field(default=0.0, ge=-180, le=180)
    zoom: float = Field(default=2.0, ge=0, le=22)
    map_metadata: dict[str, Any] | None = None
    view_permission: PermissionLevel = PermissionLevel.private
    edit_permission: PermissionLevel = PermissionLevel.private

    model_config = ConfigDict(json_schema_extra={"examples": [_MAP_BODY]})


class MapUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    center_lat: float | None = Field(default=None, ge=-90, le=90)
    center_lng: float | None = Field(default=None, ge=-180, le=180)
    zoom: float | None = Field(default=None, ge=0, le=22)
    map_metadata: dict[str, Any] | None = None
    view_permission: PermissionLevel | None = None
    edit_permission: PermissionLevel | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Renamed", "zoom": 7}]})


NOT_NULLABLE = ("name", "center_lat", "center_lng", "zoom", "permission_level", "edit_permission")


def map_values(body: MapCreate | MapUpdate) -> dict[str, Any]:
    """The body as the maps service takes values; an explicit null keeps the old value."""
    values = body.model_dump(exclude_unset=isinstance(body, MapUpdate))
    if "view_permission" in values:
        values["permission_level"] = values.pop("view_permission")
    if "map_metadata" in values and values["map_metadata"] is None:
        values["map_metadata"] = {}
    return {k: v for k, v in values.items() if not (v is None and k in NOT_NULLABLE)}


class CollaboratorCreate(BaseModel):
    email: str = Field(min_length=3, max_length=320, description="The user's e-mail address")
    role: CollaboratorRole = CollaboratorRole.viewer

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "ada@example.org", "role": "editor"}]}
    )


class CollaboratorUpdate(BaseModel):
    role: CollaboratorRole

    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "viewer"}]})


class MapCollaboratorResponse(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    role: CollaboratorRole
    created_at: UTCDateTime
    user: UserResponse | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [COLLABORATOR_EXAMPLE]})


class MapLayerCreate(BaseModel):
    layer_id: uuid.UUID
    order: int | None = Field(default=None, ge=0, le=100_000, description="Default: last")
    visible: bool = True
    opacity: int = Field(default=100, ge=0, le=100)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"layer_id": _ID, "order": 0, "visible": True, "opacity": 80}]
        }
    )


class MapLayerUpdate(BaseModel):
    order: int | None = Field(default=None, ge=0, le=100_000)
    visible: bool | None = None
    opacity: int | None = Field(default=None, ge=0, le=100)

    model_config = ConfigDict(json_schema_extra={"examples": [{"visible": False, "opacity": 50}]})


def map_layer_values(body: MapLayerCreate | MapLayerUpdate) -> dict[str, Any]:
    """Our names and units (`opacity` 0.0-1.0); unset or null fields left out."""
    names = {"order": "display_order", "visible": "is_visible", "opacity": "opacity"}
    given = body.model_dump(exclude_unset=isinstance(body, MapLayerUpdate), exclude={"layer_id"})
    values = {names[k]: v for k, v in given.items() if v is not None}
    if "opacity" in values:
        values["opacity"] = values["opacity"] / 100
    return values


class LayerOrder(BaseModel):
    layer_id: uuid.UUID
    order: int = Field(ge=0, le=100_000)


class MapLayerReorder(BaseModel):
    layer_orders: list[LayerOrder] = Field(
        max_length=10_000, description="Every layer of the map with its new order"
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"layer_orders": [{"layer_id": _ID, "order": 0}]}]}
    )


class MapLayerResponse(BaseModel):
    id: uuid.UUID
    layer_id: uuid.UUID
    order: int
    visible: bool
    opacity: int = Field(ge=0, le=100)
    created_at: UTCDateTime
    layer: LayerResponse | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [MAP_LAYER_EXAMPLE]})


class MapResponse(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    created_by: uuid.UUID
    view_permission: PermissionLevel
    edit_permission: PermissionLevel
    center_lat: float
    center_lng: float
    zoom: float
    map_metadata: dict[str, Any]
    created_at: UTCDateTime
    updated_at: UTCDateTime
    collaborators: list[MapCollaboratorResponse] = Field(default_factory=list)
    map_layers: list[MapLayerResponse] = Field(default_factory=list)
    creator: UserResponse | None = None
    user_role: str | None = Field(default=None, description="owner, editor, viewer or null")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _MAP_BODY
                | {
                    "id": _ID,
                    "created_by": _USER["id"],
                    "created_at": _AT,
                    "updated_at": _AT,
                    "collaborators": [COLLABORATOR_EXAMPLE],
                    "map_layers": [MAP_LAYER_EXAMPLE],
                    "creator": _USER,
                    "user_role": "owner",
                }
            ]
        }
    )


def user_role(role: Role | None, *, member_editor: bool = False) -> str | None:
    """SamSyn's `user_role`: an editor collaborator is "editor" whatever the map's
    `edit_permission` (which decides what the role may do, not what it is called)."""
    if role is None:
        return None
    if member_editor and role < Role.editor:
        return "editor"
    return "viewer" if role == Role.public else role.name


def map_layer_response(item: MapLayer, layer: LayerResponse | None = None) -> MapLayerResponse:
    return MapLayerResponse(
        id=item.id,
        layer_id=item.layer_id,
        order=item.display_order,
        visible=item.is_visible,
        opacity=round(item.opacity * 100),
        created_at=item.added_at,
        layer=layer,
    )


def collaborator_response(
    item: Collaborator | MapCollaborator, user: User | None
) -> MapCollaboratorResponse:
    assert item.id is not None and item.user_id is not None  # active collaborators only
    return MapCollaboratorResponse(
        id=item.id,
        user_id=item.user_id,
        role=PERMISSION_ROLE[item.permission],
        created_at=item.invited_at,
        user=user_response(user) if user is not None else None,
    )


def map_response(
    map_: Map,
    role: Role | None,
    *,
    creator: User | None,
    collaborators: Sequence[MapCollaboratorResponse] = (),
    layers: Sequence[tuple[MapLayer, LayerResponse]] = (),
    member_editor: bool = False,
) -> MapResponse:
    return MapResponse(
        id=map_.id,
        name=map_.name,
        description=map_.description,
        created_by=map_.created_by,
        view_permission=map_.permission_level,
        edit_permission=map_.edit_permission,
        center_lat=map_.center_lat,
        center_lng=map_.center_lng,
        zoom=map_.zoom,
        map_metadata=map_.map_metadata or {},
        created_at=map_.created_at,
        updated_at=map_.updated_at,
        collaborators=list(collaborators),
        map_layers=[map_layer_response(item, shown) for item, shown in layers],
        creator=user_response(creator) if creator is not None else None,
        user_role=user_role(role, member_editor=member_editor),
    )


def _is_member(role: Role | None) -> bool:
    """Members (owner and collaborators) see a map's collaborators; public readers do not."""
    return role is not None and role >= Role.viewer


def map_list(listings: Sequence[service_maps.MapListing], user: User | None) -> list[MapResponse]:
    """Maps (from `maps.service.list_in_full`, or one from `map_detail`) in SamSyn's shape,
    as `user` sees them: collaborators to members only."""
    responses = []
    for listing in listings:
        members = listing.members if _is_member(listing.role) else []
        mine = [c for c, _ in members if user is not None and c.user_id == user.id]
        responses.append(
            map_response(
                listing.map,
                listing.role,
                creator=listing.creator,
                collaborators=[collaborator_response(c, person) for c, person in members],
                layers=[(ml, layer_response(layer, by)) for ml, layer, by in listing.layers],
                member_editor=any(c.permission == CollaboratorPermission.edit for c in mine),
            )
        )
    return responses


async def map_detail(
    session: AsyncSession, map_: Map, role: Role | None, user: User | None = None
) -> MapResponse:
    """One map as SamSyn shows it to `user` (whose `role` the caller knows): its creator,
    its layers with their creators, and, to its members, its collaborators; two queries."""
    people: dict[uuid.UUID, User] = {}
    members: list[tuple[MapCollaborator, User | None]] = []
    query: Select[Any, Any]
    if _is_member(role):  # the creator and the collaborators with their users, in one query
        on = and_(MapCollaborator.user_id == User.id, MapCollaborator.map_id == map_.id)
        query = (
            select(User, MapCollaborator)
            .outerjoin(MapCollaborator, on)
            .where(or_(User.id == map_.created_by, MapCollaborator.id.is_not(None)))
        )
    else:  # nobody's collaborators to show: the creator alone
        query = select(User, null()).where(User.id == map_.created_by)
    for person, member in (await session.execute(query)).all():
        people[person.id] = person
        if member is not None:
            members.append((member, person))
    members.sort(key=lambda pair: (pair[0].invited_at, pair[0].id))
    layers = await service_maps.list_layers_with_creators(session, map_id=map_.id)
    listing = service_maps.MapListing(map_, role, people.get(map_.created_by), layers, members)
    return map_list([listing], user)[0]
