"""Comments on a map or a layer, threaded by `parent_id` (a reply stays on its parent's target)."""

from __future__ import annotations

import builtins
import uuid
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.models import Comment
from worldbase.core.errors import BadInput, NotFound
from worldbase.core.models import User

MAX_THREAD_REPLIES = 5_000


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
            raise BadInput("A reply must be on the same map or layer as the comment it answers")
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


async def delete(session: AsyncSession, *, comment: Comment) -> None:
    """Deletes the comment and its replies (the foreign key cascades)."""
    # SQLite cascades only with foreign keys on (core.db turns them on); replies first anyway,
    # so the ORM's identity map never holds a deleted parent's children.
    await session.delete(comment)
    await session.commit()


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
        select(Comment, User)
        .outerjoin(User, User.id == Comment.author_id)
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
        # Breadth-first down the threads on this page (replies of replies too).
        frontier = [c.id for c, _ in page]
        while frontier and len(replies) < MAX_THREAD_REPLIES:
            rows = await session.execute(
                select(Comment, User)
                .outerjoin(User, User.id == Comment.author_id)
                .where(Comment.parent_id.in_(frontier))
                .order_by(Comment.created_at, Comment.id)
                .limit(MAX_THREAD_REPLIES - len(replies))
            )
            level = [(c, u) for c, u in rows.all()]
            replies += level
            frontier = [c.id for c, _ in level]
    return page, replies, int(total or 0)
