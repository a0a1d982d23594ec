"""Who may do what: the permission rules of maps, layers and comments, in one place.

Maps, read (`permission_level`, SamSyn's `view_permission`):
- `private`: the owner only (collaborator rows are kept but grant nothing meanwhile);
- `collaborators`: the owner and the collaborators;
- `public`: everyone reads, anonymous callers too.
Maps, edit (`edit_permission`), among those who read: `private` the owner only;
`collaborators` also collaborators with `edit` (what every `/api` map has); `public` every
signed-in reader. Only the owner updates, deletes and shares a map through `/api`
(SamSyn's `/api/v1` lets editors update it, and editor collaborators invite viewers
whatever `edit_permission` says). Administrators may do anything.

Layers: readable by their creator, by everyone when `is_global` or `visibility` is
`public`, and by whoever can read a map that contains them. Their configuration is the
creator's (through SamSyn's API also, for `everyone` layers, every signed-in reader's);
their features are the creator's (`creator-only`) or every signed-in reader's
(`everyone`).
"""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from worldbase.apps.samsyn.models import (
    CollaboratorPermission,
    Editable,
    Layer,
    LayerVisibility,
    Map,
    MapCollaborator,
    MapLayer,
    PermissionLevel,
)
from worldbase.core import users
from worldbase.core.models import User


class Role(enum.IntEnum):
    """The caller's standing on a map, ordered: each role can do what the lower ones can."""

    public = 1  # reads a public map
    viewer = 2
    editor = 3
    owner = 4  # the creator, or an administrator


def role_of(map_: Map, user: User | None, permission: CollaboratorPermission | None) -> Role | None:
    """The caller's role from the map and the caller's collaborator permission (if any)."""
    if user is not None and (user.is_admin or map_.created_by == user.id):
        return Role.owner
    level = map_.permission_level
    if level == PermissionLevel.private or (permission is None and level != PermissionLevel.public):
        return None
    if user is not None and (
        map_.edit_permission == PermissionLevel.public
        or (
            map_.edit_permission == PermissionLevel.collaborators
            and permission == CollaboratorPermission.edit
        )
    ):
        return Role.editor
    return Role.viewer if permission is not None else Role.public


async def map_role(session: AsyncSession, *, map_: Map, user: User | None) -> Role | None:
    permission = None
    if user is not None and map_.permission_level != PermissionLevel.private:
        permission = await session.scalar(
            select(MapCollaborator.permission).where(
                MapCollaborator.map_id == map_.id, MapCollaborator.user_id == user.id
            )
        )
    return role_of(map_, user, permission)


async def current_role(
    session: AsyncSession, *, map_id: uuid.UUID, user_id: uuid.UUID | None
) -> Role | None:
    """`map_role` from fresh rows, for a live socket that re-checks its client: None when
    the map is gone, or the user is gone or disabled."""
    user = None
    if user_id is not None:
        user = await users.get_active(session, user_id=user_id)
        if user is None:
            return None
    map_ = await session.get(Map, map_id)
    return None if map_ is None else await map_role(session, map_=map_, user=user)


def readable_maps(user: User | None) -> ColumnElement[bool]:
    """A WHERE clause on `Map`: the maps `user` may read."""
    public = Map.permission_level == PermissionLevel.public
    if user is None:
        return public
    if user.is_admin:
        return Map.id.is_not(None)
    shared = and_(
        Map.permission_level != PermissionLevel.private,
        exists().where(MapCollaborator.map_id == Map.id, MapCollaborator.user_id == user.id),
    )
    return or_(public, Map.created_by == user.id, shared)


def readable_layers(user: User | None) -> ColumnElement[bool]:
    """A WHERE clause on `Layer`: the layers `user` may read."""
    if user is not None and user.is_admin:
        return Layer.id.is_not(None)
    in_readable_map = exists().where(
        MapLayer.layer_id == Layer.id, MapLayer.map_id == Map.id, readable_maps(user)
    )
    clauses = [
        Layer.is_global.is_(True),
        Layer.visibility == LayerVisibility.public,
        in_readable_map,
    ]
    if user is not None:
        clauses.append(Layer.created_by == user.id)
    return or_(*clauses)


async def can_read_layer(session: AsyncSession, *, layer: Layer, user: User | None) -> bool:
    return await can_read_layer_fields(
        session, layer_id=layer.id, is_global=layer.is_global, created_by=layer.created_by,
        user=user,
    )  # fmt: skip


async def can_read_layer_fields(
    session: AsyncSession,
    *,
    layer_id: uuid.UUID,
    is_global: bool,
    created_by: uuid.UUID,
    user: User | None,
) -> bool:
    """`can_read_layer` from the few columns it needs (hot paths load no `Layer` object)."""
    if is_global or (user is not None and (user.is_admin or created_by == user.id)):
        return True
    found = await session.scalar(
        select(Layer.id).where(Layer.id == layer_id, readable_layers(user)).limit(1)
    )
    return found is not None


def owns_layer(layer: Layer, user: User | None) -> bool:
    return user is not None and (user.is_admin or layer.created_by == user.id)


async def can_edit_features(session: AsyncSession, *, layer: Layer, user: User | None) -> bool:
    if owns_layer(layer, user):
        return True
    if user is None or layer.editable != Editable.everyone:
        return False
    return await can_read_layer(session, layer=layer, user=user)


async def can_edit_layer(session: AsyncSession, *, layer: Layer, user: User | None) -> bool:
    """SamSyn's rule for a layer's configuration (its `/api/v1`): its creator, or, for an
    `everyone` layer, every signed-in user who can read it (`is_global` stays the
    administrators', checked by the caller)."""
    return await can_edit_features(session, layer=layer, user=user)


async def maps_containing(session: AsyncSession, *, layer_id: uuid.UUID) -> list[uuid.UUID]:
    """Ids of the maps a layer appears in (their event channels hear about its changes)."""
    rows = await session.scalars(select(MapLayer.map_id).where(MapLayer.layer_id == layer_id))
    return list(rows)
