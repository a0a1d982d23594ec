"""Maps and their ordered layers."""

from __future__ import annotations

import builtins
import functools
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from worldbase.apps.samsyn.access import Role, role_of
from worldbase.apps.samsyn.models import (
    CollaboratorPermission,
    Layer,
    Map,
    MapCollaborator,
    MapLayer,
    PermissionLevel,
)
from worldbase.core.db import utcnow
from worldbase.core.errors import BadInput, Conflict, NotFound
from worldbase.core.models import User

# The list statements are built once per kind of caller, the caller's id, the page's limit and
# offset bound at execution: building the listing statement's aliases and subquery costs more
# than running it on SQLite.
_USER_ID: BindParameter[uuid.UUID] = bindparam("user_id")
_LIMIT: BindParameter[int] = bindparam("limit")
_OFFSET: BindParameter[int] = bindparam("offset")
_NEWEST_FIRST = (Map.updated_at.desc(), Map.id)
_LAYER_ORDER = (MapLayer.display_order, MapLayer.added_at, MapLayer.id)


@functools.cache
def _listed(
    *, signed_in: bool, include_public: bool, include_all: bool
) -> Select[Map, CollaboratorPermission]:
    """The maps `list` answers, each with the caller's collaborator permission (or None)."""
    where: ColumnElement[bool]
    if include_all:
        where = Map.id.is_not(None)
    elif not signed_in:
        where = Map.permission_level == PermissionLevel.public
    else:
        shared = and_(
            Map.permission_level != PermissionLevel.private, MapCollaborator.id.is_not(None)
        )
        mine = or_(Map.created_by == _USER_ID, shared)
        where = (
            or_(mine, Map.permission_level == PermissionLevel.public) if include_public else mine
        )
    joined = select(Map, MapCollaborator.permission).outerjoin(
        MapCollaborator, and_(MapCollaborator.map_id == Map.id, MapCollaborator.user_id == _USER_ID)
    )
    return joined.where(where)


def _caller(user: User | None) -> dict[str, uuid.UUID]:
    return {"user_id": user.id if user is not None else uuid.UUID(int=0)}


async def list(
    session: AsyncSession,
    *,
    user: User | None,
    include_public: bool,
    include_all: bool = False,
    limit: int,
    offset: int,
) -> tuple[builtins.list[tuple[Map, Role | None]], int]:
    """Owned and shared maps, plus public ones (`include_public`) or all (`include_all`),
    and how many match in all."""
    scope = {"signed_in": user is not None, "include_public": include_public}
    listed = _listed(**scope, include_all=include_all)
    count = select(func.count()).select_from(listed.subquery())
    total = int(await session.scalar(count, _caller(user)) or 0)
    page = listed.order_by(*_NEWEST_FIRST).limit(limit).offset(offset)
    rows = await session.execute(page, _caller(user))
    return [(m, role_of(m, user, p)) for m, p in rows.all()], total


LayerWithCreator = tuple[MapLayer, Layer, User | None]
MemberWithUser = tuple[MapCollaborator, User | None]


@dataclass
class MapListing:
    """A listed map with what SamSyn's list nests in it: its creator, its layers in order
    (each with its creator) and its collaborators in invitation order (each with its user;
    who may see them is the caller's business)."""

    map: Map
    role: Role | None
    creator: User | None
    layers: builtins.list[LayerWithCreator] = field(default_factory=builtins.list)
    members: builtins.list[MemberWithUser] = field(default_factory=builtins.list)


@functools.cache
def _listed_in_full(*, signed_in: bool, include_public: bool, include_all: bool) -> Select[Any]:
    """A page of `_listed` (`limit`, `offset`) with each map's creator, its layers and their
    creators, its collaborators and their users. Each map's rows are a `layer` row per layer
    and a `member` row per collaborator (one of each kind when it has none): a row per pair
    of the two would multiply them."""
    listed = _listed(signed_in=signed_in, include_public=include_public, include_all=include_all)
    page = listed.order_by(*_NEWEST_FIRST).limit(_LIMIT).offset(_OFFSET).subquery()
    map_ = aliased(Map, page)
    kinds = union_all(
        select(literal_column("'layer'").label("kind")),
        select(literal_column("'member'").label("kind")),
    ).subquery("kinds")
    creator, layer_creator, member_user = aliased(User), aliased(User), aliased(User)
    member = aliased(MapCollaborator)
    return (
        select(
            map_, page.c.permission, creator, MapLayer, Layer, layer_creator, member, member_user
        )
        .select_from(map_)
        .join(kinds, true())
        .outerjoin(creator, creator.id == map_.created_by)
        .outerjoin(MapLayer, and_(kinds.c.kind == "layer", MapLayer.map_id == map_.id))
        .outerjoin(Layer, Layer.id == MapLayer.layer_id)
        .outerjoin(layer_creator, layer_creator.id == Layer.created_by)
        .outerjoin(member, and_(kinds.c.kind == "member", member.map_id == map_.id))
        .outerjoin(member_user, member_user.id == member.user_id)
        .order_by(map_.updated_at.desc(), map_.id, *_LAYER_ORDER, member.invited_at, member.id)
    )


async def list_in_full(
    session: AsyncSession,
    *,
    user: User | None,
    include_public: bool,
    include_all: bool = False,
    limit: int,
    offset: int,
) -> builtins.list[MapListing]:
    """`list`'s page (no total), each map with its creator, layers and collaborators, in one
    statement: on SQLite every statement costs ~0.5 ms of driver round trips, more than its
    rows."""
    scope = {"signed_in": user is not None, "include_public": include_public}
    statement = _listed_in_full(**scope, include_all=include_all)
    page = {"limit": limit, "offset": offset}
    rows = await session.execute(statement, _caller(user) | page)
    listings: dict[uuid.UUID, MapListing] = {}
    for m, permission, by, item, layer, layer_by, member, person in rows.all():
        listing = listings.get(m.id)
        if listing is None:
            listing = listings[m.id] = MapListing(m, role_of(m, user, permission), by)
        if item is not None:
            listing.layers.append((item, layer, layer_by))
        if member is not None:
            listing.members.append((member, person))
    return [*listings.values()]


async def get_or_raise(session: AsyncSession, *, map_id: uuid.UUID) -> Map:
    map_ = await session.get(Map, map_id)
    if map_ is None:
        raise NotFound("Map not found")
    return map_


async def create(session: AsyncSession, *, user: User, values: dict[str, Any]) -> Map:
    map_ = Map(created_by=user.id, **values)
    session.add(map_)
    await session.commit()
    return map_


async def update(session: AsyncSession, *, map_: Map, values: dict[str, Any]) -> Map:
    for key, value in values.items():
        setattr(map_, key, value)
    map_.updated_at = utcnow()
    await session.commit()
    return map_


async def delete(session: AsyncSession, *, map_: Map) -> None:
    await session.delete(map_)
    await session.commit()


async def touch(session: AsyncSession, *, map_id: uuid.UUID) -> None:
    """A change to the map's layers counts as a change to the map (list order, caches)."""
    await session.execute(sql_update(Map).where(Map.id == map_id).values(updated_at=utcnow()))


async def mark_opened(session: AsyncSession, *, map_: Map, user: User | None) -> None:
    """A collaborator opening the map for the first time accepts the invitation."""
    if user is None:
        return
    result = await session.execute(
        sql_update(MapCollaborator)
        .where(
            MapCollaborator.map_id == map_.id,
            MapCollaborator.user_id == user.id,
            MapCollaborator.accepted_at.is_(None),
        )
        .values(accepted_at=utcnow())
    )
    if getattr(result, "rowcount", 0):
        await session.commit()


# --- Layers of a map -------------------------------------------------------------------------


async def list_layers(
    session: AsyncSession, *, map_id: uuid.UUID
) -> builtins.list[tuple[MapLayer, Layer]]:
    return await list_layers_of(session, map_ids=[map_id])


async def list_layers_of(
    session: AsyncSession, *, map_ids: builtins.list[uuid.UUID]
) -> builtins.list[tuple[MapLayer, Layer]]:
    """The layers of several maps in one query, each map's in its order."""
    rows = await session.execute(
        select(MapLayer, Layer)
        .join(Layer, Layer.id == MapLayer.layer_id)
        .where(MapLayer.map_id.in_(map_ids))
        .order_by(MapLayer.map_id, *_LAYER_ORDER)
    )
    return [(ml, layer) for ml, layer in rows.all()]


async def list_layers_with_creators(
    session: AsyncSession, *, map_id: uuid.UUID
) -> builtins.list[LayerWithCreator]:
    """The map's layers in order, each with its creator, in one query."""
    creator = aliased(User)
    rows = await session.execute(
        select(MapLayer, Layer, creator)
        .join(Layer, Layer.id == MapLayer.layer_id)
        .outerjoin(creator, creator.id == Layer.created_by)
        .where(MapLayer.map_id == map_id)
        .order_by(*_LAYER_ORDER)
    )
    return [(ml, layer, by) for ml, layer, by in rows.all()]


async def _ordered(session: AsyncSession, map_id: uuid.UUID) -> builtins.list[MapLayer]:
    rows = await session.scalars(
        select(MapLayer).where(MapLayer.map_id == map_id).order_by(*_LAYER_ORDER)
    )
    return [*rows]


def _renumber(items: builtins.list[MapLayer]) -> None:
    for index, item in enumerate(items):
        item.display_order = index


async def add_layer(
    session: AsyncSession,
    *,
    map_: Map,
    layer: Layer,
    display_order: int | None,
    is_visible: bool,
    opacity: float,
    verbatim: bool = False,
) -> MapLayer:
    """`display_order` inserts the layer at that place (the others renumbered 0..n-1), or,
    `verbatim` (SamSyn's API), is stored as given; without it the layer goes last."""
    existing = await _ordered(session, map_.id)
    if any(item.layer_id == layer.id for item in existing):
        raise Conflict("This layer is already on the map")
    added = MapLayer(
        map_id=map_.id, layer_id=layer.id, is_visible=is_visible, opacity=opacity, added_at=utcnow()
    )
    if verbatim:
        last = max((item.display_order for item in existing), default=-1)
        added.display_order = last + 1 if display_order is None else display_order
    else:
        position = len(existing) if display_order is None else min(display_order, len(existing))
        _renumber([*existing[:position], added, *existing[position:]])
    session.add(added)
    await touch(session, map_id=map_.id)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict("This layer is already on the map") from None
    return added


async def get_map_layer_or_raise(
    session: AsyncSession, *, map_id: uuid.UUID, layer_id: uuid.UUID
) -> MapLayer:
    item = await session.scalar(
        select(MapLayer).where(MapLayer.map_id == map_id, MapLayer.layer_id == layer_id)
    )
    if item is None:
        raise NotFound("This layer is not on the map")
    return item


async def remove_layer(
    session: AsyncSession, *, map_: Map, layer_id: uuid.UUID, verbatim: bool = False
) -> None:
    """The others are renumbered 0..n-1, unless `verbatim` (their orders stay as given)."""
    item = await get_map_layer_or_raise(session, map_id=map_.id, layer_id=layer_id)
    await session.delete(item)
    await session.flush()
    if not verbatim:
        _renumber(await _ordered(session, map_.id))
    await touch(session, map_id=map_.id)
    await session.commit()


async def update_map_layer(
    session: AsyncSession,
    *,
    map_: Map,
    layer_id: uuid.UUID,
    values: dict[str, Any],
    verbatim: bool = False,
) -> MapLayer:
    """`values`: `is_visible`, `opacity`; `display_order` moves the layer to that place (the
    others renumbered 0..n-1), or, `verbatim`, is stored as given."""
    item = await get_map_layer_or_raise(session, map_id=map_.id, layer_id=layer_id)
    values = dict(values)
    position = values.pop("display_order", None)
    for key, value in values.items():
        setattr(item, key, value)
    if position is not None and verbatim:
        item.display_order = position
    elif position is not None:
        others = [i for i in await _ordered(session, map_.id) if i.id != item.id]
        others.insert(min(position, len(others)), item)
        _renumber(others)
    await touch(session, map_id=map_.id)
    await session.commit()
    return item


async def reorder(
    session: AsyncSession,
    *,
    map_: Map,
    layer_ids: builtins.list[uuid.UUID],
    orders: builtins.list[int] | None = None,
) -> None:
    """All of the map's layers, in the new order, in one transaction: numbered 0..n-1, or
    given their `orders` (SamSyn's API: stored as given, one per layer id)."""
    existing = await _ordered(session, map_.id)
    by_layer = {item.layer_id: item for item in existing}
    foreign = [str(i) for i in layer_ids if i not in by_layer]
    if foreign:
        raise BadInput("Some layers are not on this map", detail={"unknown_layer_ids": foreign})
    if len(set(layer_ids)) != len(layer_ids):
        raise BadInput("A layer is listed more than once")
    missing = [str(i) for i in by_layer if i not in set(layer_ids)]
    if missing:
        raise BadInput(
            "List every layer of the map in its new order", detail={"missing_layer_ids": missing}
        )
    if orders is None:
        _renumber([by_layer[i] for i in layer_ids])
    else:
        for layer_id, order in zip(layer_ids, orders, strict=True):
            by_layer[layer_id].display_order = order
    await touch(session, map_id=map_.id)
    await session.commit()
