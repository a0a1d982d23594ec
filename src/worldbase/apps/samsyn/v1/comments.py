"""`/api/v1/comments` in SamSyn's shapes (adapter over the samsyn comments service).

The rules are `/api/comments`' (`comments.service`): a comment is read by whoever may read
its map or layer, written by the map's members (any reader of a layer), edited by its author,
resolved by its author or an editor, deleted by its author or the owner. SamSyn's answers:
a missing parent is 404, a reply on another map or layer 400, a list filtered to a map the
caller may not read is empty.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from worldbase.apps.samsyn.comments import service as service_comments
from worldbase.apps.samsyn.events import after_commit
from worldbase.apps.samsyn.models import Comment
from worldbase.apps.samsyn.v1.comment_schemas import (
    CommentDeleted,
    CommentResponse,
    CommentWithReplies,
    V1CommentCreate,
    V1CommentUpdate,
    comment_response,
)
from worldbase.core.auth import CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import BadInput, DomainError
from worldbase.core.models import User
from worldbase.core.schemas import PageOffset
from worldbase.core.services import ServicesDep

router = APIRouter(prefix="/comments", tags=["samsyn v1: comments"])


class WrongParent(DomainError):
    status_code = 400  # SamSyn's answer to a reply on another map or layer


async def _response(session: Session, comment: Comment, author: User | None) -> CommentResponse:
    counts = await service_comments.reply_counts(session, ids=[comment.id])
    return comment_response(comment, author, counts.get(comment.id, 0))


@router.get(
    "",
    response_model=list[CommentResponse],
    summary="Comments the caller may read, newest first (filter by map, layer, parent)",
)
async def list_comments(
    session: Session,
    user: OptionalUser,
    map_id: uuid.UUID | None = None,
    layer_id: uuid.UUID | None = None,
    parent_id: Annotated[uuid.UUID | None, Query(description="Direct replies of")] = None,
    include_resolved: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: PageOffset = 0,
) -> list[CommentResponse]:
    rows = await service_comments.list_readable(
        session,
        user=user,
        map_id=map_id,
        layer_id=layer_id,
        parent_id=parent_id,
        include_resolved=include_resolved,
        limit=limit,
        offset=offset,
    )
    counts = await service_comments.reply_counts(session, ids=[c.id for c, _ in rows])
    return [comment_response(c, a, counts.get(c.id, 0)) for c, a in rows]


@router.get("/{comment_id}", response_model=CommentResponse, summary="One comment")
async def get_comment(comment_id: uuid.UUID, session: Session, user: OptionalUser) -> Any:
    comment, _ = await service_comments.get_readable(session, comment_id=comment_id, user=user)
    author = await session.get(User, comment.author_id)
    return await _response(session, comment, author)


@router.get(
    "/{comment_id}/thread",
    response_model=CommentWithReplies,
    summary="A comment with its replies, nested (replies of replies too, to max_depth)",
)
async def get_thread(
    comment_id: uuid.UUID,
    session: Session,
    user: OptionalUser,
    max_depth: Annotated[int, Query(ge=1, le=20)] = 10,
) -> CommentWithReplies:
    root, _ = await service_comments.get_readable(session, comment_id=comment_id, user=user)
    rows = [(root, await session.get(User, root.author_id))]
    rows += await service_comments.descendants(session, roots=[root.id], max_depth=max_depth)
    counts = await service_comments.reply_counts(session, ids=[c.id for c, _ in rows])
    nodes = {
        c.id: CommentWithReplies(**comment_response(c, a, counts.get(c.id, 0)).model_dump())
        for c, a in rows
    }
    for comment, _ in rows[1:]:
        assert comment.parent_id is not None
        nodes[comment.parent_id].replies.append(nodes[comment.id])
    return nodes[root.id]


@router.post(
    "",
    response_model=CommentResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Comment on a map or a layer, or reply to a comment",
)
async def create_comment(
    body: V1CommentCreate, session: Session, user: CurrentUser, services: ServicesDep
) -> CommentResponse:
    if body.map_id is not None and body.layer_id is not None:
        raise BadInput("Cannot provide both map_id and layer_id")
    try:
        comment, found = await service_comments.create_checked(
            session,
            author=user,
            content=body.content,
            map_id=body.map_id,
            layer_id=body.layer_id,
            parent_id=body.parent_id,
        )
    except service_comments.ReplyElsewhere as exc:
        raise WrongParent(exc.message) from exc
    await after_commit(
        services, service_comments.change("comment.created", comment, user, found), actor=user
    )
    return comment_response(comment, user, 0)


async def _update(
    session: Session, services: ServicesDep, user: User, comment_id: uuid.UUID, values: dict
) -> CommentResponse:
    comment, found = await service_comments.get_readable(session, comment_id=comment_id, user=user)
    service_comments.check_update(comment, found, user=user, values=values)
    comment = await service_comments.update(session, comment=comment, values=values)
    author = await service_comments.author_of(session, comment=comment, user=user)
    event = service_comments.change("comment.updated", comment, author, found)
    await after_commit(services, event, actor=user)
    return await _response(session, comment, author)


@router.put("/{comment_id}", response_model=CommentResponse, summary="Edit a comment (its author)")
async def update_comment(
    comment_id: uuid.UUID,
    body: V1CommentUpdate,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> CommentResponse:
    values = body.model_dump(exclude_none=True)
    return await _update(session, services, user, comment_id, values)


@router.put(
    "/{comment_id}/resolve",
    response_model=CommentResponse,
    summary="Resolve or reopen a comment (its author, an editor of its map or layer, an admin)",
)
async def resolve_comment(
    comment_id: uuid.UUID,
    is_resolved: bool,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> CommentResponse:
    return await _update(session, services, user, comment_id, {"is_resolved": is_resolved})


@router.delete(
    "/{comment_id}",
    response_model=CommentDeleted,
    summary="Delete a comment and its replies (its author, the owner, an admin)",
)
async def delete_comment(
    comment_id: uuid.UUID, session: Session, user: CurrentUser, services: ServicesDep
) -> CommentDeleted:
    change = await service_comments.delete(session, comment_id=comment_id, user=user)
    await after_commit(services, change, actor=user)
    return CommentDeleted(status="deleted")
