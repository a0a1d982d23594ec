"""Existence and permission checks that return the object (see `access.py` for the rules).

A map or layer the caller may not read answers 404, as if it did not exist; one the caller
may read but not change answers 403; anonymous writes answer 401 first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends

from worldbase.apps.samsyn.access import (
    Role,
    can_edit_features,
    can_read_layer,
    map_role,
    owns_layer,
)
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.maps import collaborators as service_collaborators
from worldbase.apps.samsyn.maps import service as service_maps
from worldbase.apps.samsyn.models import Layer, Map
from worldbase.apps.samsyn.raster import service as service_raster
from worldbase.apps.samsyn.raster.service import RasterLayer
from worldbase.core.auth import CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import Forbidden, NotFound
from worldbase.core.models import User

# The paging query parameters of the list routes.


def page_of(items: list[Any], *, total: int, limit: int, offset: int) -> dict[str, Any]:
    """The body of a list route's `Page` answer."""
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@dataclass
class MapAccess:
    map: Map
    role: Role
    user: User | None


async def _map_access(session: Session, map_id: uuid.UUID, user: User | None) -> MapAccess:
    await service_collaborators.claim_invitations(session, user=user)
    map_ = await service_maps.get_or_raise(session, map_id=map_id)
    role = await map_role(session, map_=map_, user=user)
    if role is None:
        raise NotFound("Map not found")
    return MapAccess(map_, role, user)


async def map_for_read(id: uuid.UUID, session: Session, user: OptionalUser) -> MapAccess:
    return await _map_access(session, id, user)


async def map_for_edit(id: uuid.UUID, session: Session, user: CurrentUser) -> MapAccess:
    access = await _map_access(session, id, user)
    if access.role < Role.editor:
        raise Forbidden("You can view this map but not edit it")
    return access


async def map_for_owner(id: uuid.UUID, session: Session, user: CurrentUser) -> MapAccess:
    access = await _map_access(session, id, user)
    if access.role < Role.owner:
        raise Forbidden("Only the map's owner can do this")
    return access


async def map_for_members(id: uuid.UUID, session: Session, user: CurrentUser) -> MapAccess:
    """The owner and the collaborators (not the public): who sees the list of collaborators."""
    access = await _map_access(session, id, user)
    if access.role < Role.viewer:
        raise Forbidden("Only the map's owner and collaborators can do this")
    return access


MapForRead = Annotated[MapAccess, Depends(map_for_read)]
MapForEdit = Annotated[MapAccess, Depends(map_for_edit)]
MapForOwner = Annotated[MapAccess, Depends(map_for_owner)]
MapForMembers = Annotated[MapAccess, Depends(map_for_members)]


async def layer_for_read(id: uuid.UUID, session: Session, user: OptionalUser) -> Layer:
    layer = await service_layers.get_or_raise(session, layer_id=id)
    if not await can_read_layer(session, layer=layer, user=user):
        raise NotFound("Layer not found")
    return layer


async def layer_for_owner(id: uuid.UUID, session: Session, user: CurrentUser) -> Layer:
    layer = await layer_for_read(id, session, user)
    if not owns_layer(layer, user):
        raise Forbidden("Only the layer's creator can change its configuration")
    return layer


async def layer_for_feature_edit(id: uuid.UUID, session: Session, user: CurrentUser) -> Layer:
    layer = await layer_for_read(id, session, user)
    if not await can_edit_features(session, layer=layer, user=user):
        raise Forbidden("This layer's features are editable by its creator only")
    return layer


async def layer_row_for_read(id: uuid.UUID, session: Session, user: OptionalUser) -> RasterLayer:
    """`layer_for_read` without the ORM object: the hot reads' one statement."""
    return await service_raster.get_or_raise(session, layer_id=id, user=user)


LayerForRead = Annotated[Layer, Depends(layer_for_read)]
LayerRowForRead = Annotated[RasterLayer, Depends(layer_row_for_read)]
LayerForOwner = Annotated[Layer, Depends(layer_for_owner)]
LayerForFeatureEdit = Annotated[Layer, Depends(layer_for_feature_edit)]
