"""Routes: threaded comments on maps and layers, and the caller's own profile.

Reading comments needs read access to their map or layer. Writing on a map needs to be its
owner or a collaborator (the public reads, but does not write); on a layer, to be signed in
and able to read it. Content is edited by its author; a thread is resolved by its author or
whoever edits the target; a comment is deleted by its author or the target's owner (with
its replies). Administrators may do anything except edit another person's words.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.access import (
    Role,
    can_edit_features,
    can_read_layer,
    map_role,
    maps_containing,
    owns_layer,
)
from worldbase.apps.samsyn.comments import service as service_comments
from worldbase.apps.samsyn.dependencies import page_of
from worldbase.apps.samsyn.events import Change, after_commit
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.maps import service as service_maps
from worldbase.apps.samsyn.models import Comment
from worldbase.apps.samsyn.schemas import (
    CommentCreate,
    CommentPage,
    CommentRead,
    CommentUpdate,
    UserMe,
)
from worldbase.core.auth import CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import BadInput, Forbidden, NotFound
from worldbase.core.models import User
from worldbase.core.schemas import PageLimit, PageOffset
from worldbase.core.services import ServicesDep

router = APIRouter()


class _Target:
    """The caller's rights on a comment's map or layer."""

    def __init__(
        self, *, read: bool, write: bool, moderate: bool, owner: bool, maps: list[uuid.UUID]
    ):
        self.read, self.write, self.moderate, self.owner, self.maps = (
            read,
            write,
            moderate,
            owner,
            maps,
        )


async def _target(
    session: AsyncSession,
    *,
    map_id: uuid.UUID | None,
    layer_id: uuid.UUID | None,
    user: User | None,
) -> _Target:
    if map_id is not None:
        try:
            map_ = await service_maps.get_or_raise(session, map_id=map_id)
        except NotFound:
            raise NotFound("Map not found") from None
        role = await map_role(session, map_=map_, user=user)
        if role is None:
            raise NotFound("Map not found")
        return _Target(
            read=True,
            write=user is not None and role >= Role.viewer,
            moderate=role >= Role.editor,
            owner=role >= Role.owner,
            maps=[map_.id],
        )
    assert layer_id is not None
    layer = await service_layers.get_or_raise(session, layer_id=layer_id)
    if not await can_read_layer(session, layer=layer, user=user):
        raise NotFound("Layer not found")
    return _Target(
        read=True,
        write=user is not None,
        moderate=await can_edit_features(session, layer=layer, user=user),
        owner=owns_layer(layer, user),
        maps=await maps_containing(session, layer_id=layer.id),
    )


def _read(comment: Comment, author: User | None) -> dict[str, Any]:
    data = CommentRead.model_validate(comment).model_dump(exclude={"author", "replies"})
    data["author"] = (
        {"id": author.id, "name": author.name, "avatar_url": author.avatar_url} if author else None
    )
    data["replies"] = []
    return data


@router.get(
    "/api/comments",
    response_model=CommentPage,
    summary="Comments of a map and/or a layer, as threads (tree) or a flat list",
)
async def list_comments(
    session: Session,
    user: OptionalUser,
    map_id: Annotated[uuid.UUID | None, Query(alias="mapId")] = None,
    map_id_snake: Annotated[
        uuid.UUID | None, Query(alias="map_id", include_in_schema=False)
    ] = None,
    layer_id: Annotated[uuid.UUID | None, Query(alias="layerId")] = None,
    layer_id_snake: Annotated[
        uuid.UUID | None, Query(alias="layer_id", include_in_schema=False)
    ] = None,
    format: Annotated[str, Query(pattern="^(tree|flat)$")] = "tree",
    is_resolved: Annotated[bool | None, Query(alias="isResolved")] = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> dict[str, Any]:
    map_id = map_id or map_id_snake
    layer_id = layer_id or layer_id_snake
    if map_id is None and layer_id is None:
        raise BadInput("Give mapId and/or layerId")
    if map_id is not None:
        await _target(session, map_id=map_id, layer_id=None, user=user)
    if layer_id is not None:
        await _target(session, map_id=None, layer_id=layer_id, user=user)
    tree = format == "tree"
    page, replies, total = await service_comments.list(
        session,
        map_ids=[map_id] if map_id else [],
        layer_ids=[layer_id] if layer_id else [],
        tree=tree,
        is_resolved=is_resolved,
        limit=limit,
        offset=offset,
    )
    items = [_read(c, a) for c, a in page]
    if tree:
        by_id = {item["id"]: item for item in items}
        for comment, author in replies:
            item = _read(comment, author)
            by_id[item["id"]] = item
            parent = by_id.get(comment.parent_id)
            if parent is not None:
                parent["replies"].append(item)
    return page_of(items, total=total, limit=limit, offset=offset) | {"format": format}


@router.post(
    "/api/comments",
    response_model=CommentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Comment on a map or a layer, or reply to a comment",
)
async def create_comment(
    body: CommentCreate, session: Session, user: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    parent = None
    if body.parent_id is not None:
        parent = await service_comments.get_or_raise(session, comment_id=body.parent_id)
    map_id, layer_id = service_comments.resolve_target(
        map_id=body.map_id, layer_id=body.layer_id, parent=parent
    )
    target = await _target(session, map_id=map_id, layer_id=layer_id, user=user)
    if not target.write:
        raise Forbidden("Only the map's owner and collaborators can comment on it")
    comment = await service_comments.create(
        session,
        author=user,
        content=body.content,
        map_id=map_id,
        layer_id=layer_id,
        parent_id=body.parent_id,
    )
    data = CommentRead.model_validate(_read(comment, user)).model_dump(mode="json")
    await after_commit(services, Change("comment.created", data, target.maps), actor=user)
    return data


async def _comment_and_target(
    session: AsyncSession, comment_id: uuid.UUID, user: User
) -> tuple[Comment, _Target]:
    comment = await service_comments.get_or_raise(session, comment_id=comment_id)
    try:
        target = await _target(session, map_id=comment.map_id, layer_id=comment.layer_id, user=user)
    except NotFound:
        raise NotFound("Comment not found") from None
    return comment, target


@router.put(
    "/api/comments/{id}", response_model=CommentRead, summary="Edit or (un)resolve a comment"
)
async def update_comment(
    id: uuid.UUID, body: CommentUpdate, session: Session, user: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    comment, target = await _comment_and_target(session, id, user)
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    if not values:
        raise BadInput("Nothing to update: send content and/or is_resolved")
    is_author = comment.author_id == user.id
    if "content" in values and not is_author:
        raise Forbidden("Only the author can edit a comment")
    if "is_resolved" in values and not (is_author or target.moderate or user.is_admin):
        raise Forbidden("Only the author or an editor can resolve a comment")
    comment = await service_comments.update(session, comment=comment, values=values)
    author = user if is_author else await session.get(User, comment.author_id)
    data = CommentRead.model_validate(_read(comment, author)).model_dump(mode="json")
    await after_commit(services, Change("comment.updated", data, target.maps), actor=user)
    return data


@router.delete(
    "/api/comments/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a comment and its replies (author, or the map's or layer's owner)",
)
async def delete_comment(
    id: uuid.UUID, session: Session, user: CurrentUser, services: ServicesDep
) -> Response:
    comment, target = await _comment_and_target(session, id, user)
    if not (comment.author_id == user.id or target.owner or user.is_admin):
        raise Forbidden("Only the author or the owner can delete a comment")
    await service_comments.delete(session, comment=comment)
    await after_commit(
        services, Change("comment.deleted", {"id": str(id)}, target.maps), actor=user
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/users/me", response_model=UserMe, summary="The signed-in user's profile")
async def users_me(user: CurrentUser) -> User:
    return user
