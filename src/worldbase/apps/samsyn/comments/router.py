"""Routes: threaded comments on maps and layers (the rules: `comments.service`), and the
caller's own profile."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from worldbase.apps.samsyn.comments import service as service_comments
from worldbase.apps.samsyn.dependencies import page_of
from worldbase.apps.samsyn.events import after_commit
from worldbase.apps.samsyn.schemas import (
    CommentCreate,
    CommentPage,
    CommentRead,
    CommentUpdate,
    UserMe,
)
from worldbase.core.auth import CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import BadInput
from worldbase.core.models import User
from worldbase.core.schemas import PageLimit, PageOffset
from worldbase.core.services import ServicesDep

router = APIRouter()


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
    if map_id is not None:  # 404 unless the caller may read it
        await service_comments.rights(session, map_id=map_id, layer_id=None, user=user)
    if layer_id is not None:
        await service_comments.rights(session, map_id=None, layer_id=layer_id, user=user)
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
    items = [service_comments.read(c, a) for c, a in page]
    if tree:
        by_id = {item["id"]: item for item in items}
        for comment, author in replies:
            item = service_comments.read(comment, author)
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
    comment, found = await service_comments.create_checked(
        session,
        author=user,
        content=body.content,
        map_id=body.map_id,
        layer_id=body.layer_id,
        parent_id=body.parent_id,
    )
    event = service_comments.change("comment.created", comment, user, found)
    await after_commit(services, event, actor=user)
    return event.data


@router.put(
    "/api/comments/{id}", response_model=CommentRead, summary="Edit or (un)resolve a comment"
)
async def update_comment(
    id: uuid.UUID, body: CommentUpdate, session: Session, user: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    comment, found = await service_comments.get_readable(session, comment_id=id, user=user)
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    service_comments.check_update(comment, found, user=user, values=values)
    comment = await service_comments.update(session, comment=comment, values=values)
    author = await service_comments.author_of(session, comment=comment, user=user)
    event = service_comments.change("comment.updated", comment, author, found)
    await after_commit(services, event, actor=user)
    return event.data


@router.delete(
    "/api/comments/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a comment and its replies (author, or the map's or layer's owner)",
)
async def delete_comment(
    id: uuid.UUID, session: Session, user: CurrentUser, services: ServicesDep
) -> Response:
    change = await service_comments.delete(session, comment_id=id, user=user)
    await after_commit(services, change, actor=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/users/me", response_model=UserMe, summary="The signed-in user's profile")
async def users_me(user: CurrentUser) -> User:
    return user
