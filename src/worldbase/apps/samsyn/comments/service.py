"""Comments on a map or a layer, threaded by `parent_id` (a reply stays on its parent's target).

Reading comments needs read access to their map or layer. Writing on a map needs to be its
owner or a collaborator (the public reads, but does not write); on a layer, to be signed in
and able to read it. Content is edited by its author; a thread is resolved by its author or
whoever edits the target; a comment is deleted by its author or the target's owner (with
its replies). Administrators may do anything except edit another person's words.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.access import (
    Role,
    can_edit_features,
    can_read_layer,
    map_role,
    maps_containing,
    owns_layer,
    readable_layers,
    readable_maps,
)
from worldbase.apps.samsyn.events import Change
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.maps import service as service_maps
from worldbase.apps.samsyn.models import Comment, Layer, Map
from worldbase.apps.samsyn.schemas import CommentRead
from worldbase.core.errors import BadInput, Forbidden, NotFound
from worldbase.core.models import User

MAX_THREAD_REPLIES = 5_000


class ReplyElsewhere(BadInput):
    """A reply names another map or layer than the comment it answers."""


@dataclass(frozen=True)
class Rights:
    """The caller's rights on a comment's map or layer, and the maps that show it."""

    write: bool
    moderate: bool
    owner: bool
    maps: builtins.list[uuid.UUID]


async def rights(
    session: AsyncSession,
    *,
    map_id: uuid.UUID | None,
    layer_id: uuid.UUID | None,
    user: User | None,
) -> Rights:
    """The caller's rights on a map or a layer; 404 when it cannot read it."""
    if map_id is not None:
        try:
            map_ = await service_maps.get_or_raise(session, map_id=map_id)
        except NotFound:
            raise NotFound("Map not found") from None
        role = await map_role(session, map_=map_, user=user)
        if role is None:
            raise NotFound("Map not found")
        return Rights(
            write=user is not None and role >= Role.viewer,
            moderate=role >= Role.editor,
            owner=role >= Role.owner,
            maps=[map_.id],
        )
    assert layer_id is not None
    layer = await service_layers.get_or_raise(session, layer_id=layer_id)
    if not await can_read_layer(session, layer=layer, user=user):
        raise NotFound("Layer not found")
    return Rights(
        write=user is not None,
        moderate=await can_edit_features(session, layer=layer, user=user),
        owner=owns_layer(layer, user),
        maps=await maps_containing(session, layer_id=layer.id),
    )


async def get_readable(
    session: AsyncSession, *, comment_id: uuid.UUID, user: User | None
) -> tuple[Comment, Rights]:
    """The comment and the caller's rights on its target; 404 when it may not read it."""
    comment = await get_or_raise(session, comment_id=comment_id)
    try:
        found = await rights(session, map_id=comment.map_id, layer_id=comment.layer_id, user=user)
    except NotFound:
        raise NotFound("Comment not found") from None
    return comment, found


async def create_checked(
    session: AsyncSession,
    *,
    author: User,
    content: str,
    map_id: uuid.UUID | None,
    layer_id: uuid.UUID | None,
    parent_id: uuid.UUID | None,
) -> tuple[Comment, Rights]:
    """A new comment, once its parent, its target and the author's right to write are checked."""
    parent = None
    if parent_id is not None:
        try:
            parent = await get_or_raise(session, comment_id=parent_id)
        except NotFound:
            raise NotFound("Parent comment not found") from None
    map_id, layer_id = resolve_target(map_id=map_id, layer_id=layer_id, parent=parent)
    found = await rights(session, map_id=map_id, layer_id=layer_id, user=author)
    if not found.write:
        raise Forbidden("Only the map's owner and collaborators can comment on it")
    comment = await create(
        session,
        author=author,
        content=content,
        map_id=map_id,
        layer_id=layer_id,
        parent_id=parent_id,
    )
    return comment, found


def read(comment: Comment, author: User | None) -> dict[str, Any]:
    """The comment as `/api/comments` shows it (no replies), as Python values."""
    data = CommentRead.model_validate(comment).model_dump(exclude={"author", "replies"})
    data["author"] = (
        {"id": author.id, "name": author.name, "avatar_url": author.avatar_url} if author else None
    )
    data["replies"] = []
    return data


def change(kind: str, comment: Comment, author: User | None, found: Rights) -> Change:
    """The live event of a committed comment change (`comment.created`, `comment.updated`;
    one `/api` and `/api/v1` publish alike), on every map that shows the comment."""
    data = CommentRead.model_validate(read(comment, author)).model_dump(mode="json")
    return Change(kind, data, found.maps)


def deleted(comment_id: uuid.UUID, found: Rights) -> Change:
    return Change("comment.deleted", {"id": str(comment_id)}, found.maps)


def check_update(comment: Comment, found: Rights, *, user: User, values: dict[str, Any]) -> None:
    """403 unless `user` may make these changes (content: the author; resolution: the author,
    an editor of the target or an administrator)."""
    if not values:
        raise BadInput("Nothing to update: send content and/or is_resolved")
    is_author = comment.author_id == user.id
    if "content" in values and not is_author:
        raise Forbidden("Only the author can edit a comment")
    if "is_resolved" in values and not (is_author or found.moderate or user.is_admin):
        raise Forbidden("Only the author or an editor can resolve a comment")


def check_delete(comment: Comment, found: Rights, *, user: User) -> None:
    if not (comment.author_id == user.id or found.owner or user.is_admin):
        raise Forbidden("Only the author or the owner can delete a comment")


async def get_or_raise(session: AsyncSession, *, comment_id: uuid.UUID) -> Comment:
    comment = await session.get(Comment, comment_id)
    if comment is None:
        raise NotFound("Comment not found")
    return comment


def resolve_target(
    *, map_id: uuid.UUID | None, layer_id: uuid.UUID | None, parent: Comment | None
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The (map_id, layer_id) a new comment belongs to: exactly one of them."""
    if parent is not None:
        if map_id is None and layer_id is None:
            return parent.map_id, parent.layer_id
        if (map_id, layer_id) != (parent.map_id, parent.layer_id):
            where = "map" if map_id is not None else "layer"
            raise ReplyElsewhere(f"Parent comment must be on the same {where}")
        return map_id, layer_id
    if (map_id is None) == (layer_id is None):
        raise BadInput(
            "A comment is on a map or on a layer: give exactly one of map_id and layer_id"
        )
    return map_id, layer_id


async def create(
    session: AsyncSession,
    *,
    author: User,
    content: str,
    map_id: uuid.UUID | None,
    layer_id: uuid.UUID | None,
    parent_id: uuid.UUID | None,
) -> Comment:
    comment = Comment(
        content=content,
        author_id=author.id,
        map_id=map_id,
        layer_id=layer_id,
        parent_id=parent_id,
        is_resolved=False,
    )
    session.add(comment)
    await session.commit()
    return comment


async def update(session: AsyncSession, *, comment: Comment, values: dict[str, Any]) -> Comment:
    for key, value in values.items():
        setattr(comment, key, value)
    await session.commit()
    return comment


async def author_of(session: AsyncSession, *, comment: Comment, user: User) -> User | None:
    """The comment's author (`user` when it is theirs, saving a query)."""
    return user if comment.author_id == user.id else await session.get(User, comment.author_id)


async def delete(session: AsyncSession, *, comment_id: uuid.UUID, user: User) -> Change:
    """Deletes a comment the caller may read and delete, with its replies (the foreign key
    cascades); the change to publish (404/403 as `get_readable`/`check_delete` decide)."""
    comment, found = await get_readable(session, comment_id=comment_id, user=user)
    check_delete(comment, found, user=user)
    await session.delete(comment)
    await session.commit()
    return deleted(comment_id, found)


def _target_filter(map_ids: builtins.list[uuid.UUID], layer_ids: builtins.list[uuid.UUID]) -> Any:
    clauses = []
    if map_ids:
        clauses.append(Comment.map_id.in_(map_ids))
    if layer_ids:
        clauses.append(Comment.layer_id.in_(layer_ids))
    return or_(*clauses)


async def list(
    session: AsyncSession,
    *,
    map_ids: builtins.list[uuid.UUID],
    layer_ids: builtins.list[uuid.UUID],
    tree: bool,
    is_resolved: bool | None,
    limit: int,
    offset: int,
) -> tuple[
    builtins.list[tuple[Comment, User | None]], builtins.list[tuple[Comment, User | None]], int
]:
    """(page, replies, total). Tree: the page holds top-level comments and `replies` every
    reply of those threads; flat: every comment in creation order, no replies."""
    filters: builtins.list[Any] = [_target_filter(map_ids, layer_ids)]
    if is_resolved is not None:
        filters.append(Comment.is_resolved.is_(is_resolved))
    if tree:
        filters.append(Comment.parent_id.is_(None))
    total = await session.scalar(select(func.count()).select_from(Comment).where(*filters))
    query = (
        _with_author()
        .where(*filters)
        .order_by(Comment.created_at, Comment.id)
        .limit(limit)
        .offset(offset)
    )
    page: builtins.list[tuple[Comment, User | None]] = [
        (c, u) for c, u in (await session.execute(query)).all()
    ]
    replies: builtins.list[tuple[Comment, User | None]] = []
    if tree and page:
        replies = await descendants(session, roots=[c.id for c, _ in page])
    return page, replies, int(total or 0)


def _with_author() -> Any:
    return select(Comment, User).outerjoin(User, User.id == Comment.author_id)


async def descendants(
    session: AsyncSession, *, roots: builtins.list[uuid.UUID], max_depth: int | None = None
) -> builtins.list[tuple[Comment, User | None]]:
    """Every reply below `roots` (replies of replies too, at most `max_depth` levels down),
    breadth-first, oldest first per level, at most `MAX_THREAD_REPLIES` in all."""
    replies: builtins.list[tuple[Comment, User | None]] = []
    frontier, depth = roots, 0
    while frontier and len(replies) < MAX_THREAD_REPLIES and depth != max_depth:
        rows = await session.execute(
            _with_author()
            .where(Comment.parent_id.in_(frontier))
            .order_by(Comment.created_at, Comment.id)
            .limit(MAX_THREAD_REPLIES - len(replies))
        )
        level = [(c, u) for c, u in rows.all()]
        replies += level
        frontier, depth = [c.id for c, _ in level], depth + 1
    return replies


def readable(user: User | None) -> Any:
    """A WHERE clause on `Comment`: the comments `user` may read (those on a map or a layer
    they may read)."""
    return or_(
        Comment.map_id.in_(select(Map.id).where(readable_maps(user))),
        Comment.layer_id.in_(select(Layer.id).where(readable_layers(user))),
    )


async def list_readable(
    session: AsyncSession,
    *,
    user: User | None,
    map_id: uuid.UUID | None,
    layer_id: uuid.UUID | None,
    parent_id: uuid.UUID | None,
    include_resolved: bool,
    limit: int,
    offset: int,
) -> builtins.list[tuple[Comment, User | None]]:
    """The comments `user` may read that match every filter given, newest first (a map or
    layer they may not read, or one that does not exist, simply matches nothing)."""
    filters = [readable(user)]
    for column, value in (
        (Comment.map_id, map_id),
        (Comment.layer_id, layer_id),
        (Comment.parent_id, parent_id),
    ):
        if value is not None:
            filters.append(column == value)
    if not include_resolved:
        filters.append(Comment.is_resolved.is_(False))
    query = (
        _with_author()
        .where(*filters)
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [(c, u) for c, u in (await session.execute(query)).all()]


async def reply_counts(
    session: AsyncSession, *, ids: builtins.list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many direct replies each of these comments has (absent: none)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Comment.parent_id, func.count())
        .where(Comment.parent_id.in_(ids))
        .group_by(Comment.parent_id)
    )
    return {parent: int(count) for parent, count in rows.all() if parent is not None}
