"""Sharing a map: collaborators (users) and pending invitations (e-mails without an account).

Pending invitations become collaborators lazily: the first time the invited person, signed
in with that e-mail address, lists or opens maps (`claim_invitations`). Core never has
to know about this app, and an account made any way (password, Clerk, webhook) works.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.models import (
    CollaboratorPermission,
    Map,
    MapCollaborator,
    MapInvitation,
    PermissionLevel,
)
from worldbase.core import users
from worldbase.core.db import utcnow
from worldbase.core.errors import BadInput, NotFound
from worldbase.core.models import User


@dataclass
class Collaborator:
    user_id: uuid.UUID | None
    email: str | None
    name: str | None
    avatar_url: str | None
    permission: CollaboratorPermission
    status: str
    invited_at: datetime
    accepted_at: datetime | None
    id: uuid.UUID | None = None  # the collaborator row (None for a pending invitation)


async def list(session: AsyncSession, *, map_id: uuid.UUID) -> builtins.list[Collaborator]:
    rows = await session.execute(
        select(MapCollaborator, User)
        .join(User, User.id == MapCollaborator.user_id)
        .where(MapCollaborator.map_id == map_id)
        .order_by(MapCollaborator.invited_at, MapCollaborator.id)
    )
    items = [
        Collaborator(
            user.id,
            user.email,
            user.name,
            user.avatar_url,
            c.permission,
            "active",
            c.invited_at,
            c.accepted_at,
            c.id,
        )
        for c, user in rows.all()
    ]
    pending = await session.scalars(
        select(MapInvitation)
        .where(MapInvitation.map_id == map_id)
        .order_by(MapInvitation.invited_at, MapInvitation.id)
    )
    items += [
        Collaborator(None, i.email, None, None, i.permission, "pending", i.invited_at, None)
        for i in pending
    ]
    return items


async def invite(
    session: AsyncSession,
    *,
    map_: Map,
    inviter: User,
    user_id: uuid.UUID | None,
    email: str | None,
    permission: CollaboratorPermission,
) -> tuple[Collaborator, bool]:
    """(the collaborator or pending invitation, created?). Inviting again changes the
    permission. Sharing a private map makes it a `collaborators` map."""
    target = None
    if user_id is not None:
        target = await users.get(session, user_id=user_id)
        if target is None:
            raise NotFound("User not found")
    elif email is not None:
        email = users.normalize_email(email)
        assert email is not None
        target = await users.get_by_email(session, email=email)
    if target is not None and target.id == map_.created_by:
        raise BadInput("The map's owner cannot be invited to it")
    if map_.permission_level == PermissionLevel.private:
        map_.permission_level = PermissionLevel.collaborators
        map_.updated_at = utcnow()
    if target is None:
        assert email is not None
        return await _invite_email(
            session, map_=map_, inviter=inviter, email=email, permission=permission
        )
    row = await get(session, map_id=map_.id, user_id=target.id)
    created = row is None
    if row is None:
        row = MapCollaborator(
            map_id=map_.id, user_id=target.id, permission=permission, invited_at=utcnow()
        )
        session.add(row)
    else:
        row.permission = permission
    try:
        await session.commit()
    except IntegrityError:  # the same invitation, sent twice at once
        await session.rollback()
        return await invite(
            session,
            map_=map_,
            inviter=inviter,
            user_id=target.id,
            email=None,
            permission=permission,
        )
    return (
        Collaborator(
            target.id,
            target.email,
            target.name,
            target.avatar_url,
            row.permission,
            "active",
            row.invited_at,
            row.accepted_at,
            row.id,
        ),
        created,
    )


async def list_active(
    session: AsyncSession, *, map_ids: builtins.list[uuid.UUID]
) -> builtins.list[MapCollaborator]:
    """The collaborator rows (no pending invitations) of several maps, in one query."""
    rows = await session.scalars(
        select(MapCollaborator)
        .where(MapCollaborator.map_id.in_(map_ids))
        .order_by(MapCollaborator.invited_at, MapCollaborator.id)
    )
    return [*rows]


async def get(
    session: AsyncSession, *, map_id: uuid.UUID, user_id: uuid.UUID
) -> MapCollaborator | None:
    return await session.scalar(
        select(MapCollaborator).where(
            MapCollaborator.map_id == map_id, MapCollaborator.user_id == user_id
        )
    )


async def update(
    session: AsyncSession, *, map_: Map, user_id: uuid.UUID, permission: CollaboratorPermission
) -> MapCollaborator:
    """A collaborator's new permission (`NotFound` if that user is not one)."""
    row = await get(session, map_id=map_.id, user_id=user_id)
    if row is None:
        raise NotFound("Collaborator not found")
    row.permission = permission
    await session.commit()
    return row


async def _invite_email(
    session: AsyncSession,
    *,
    map_: Map,
    inviter: User,
    email: str,
    permission: CollaboratorPermission,
) -> tuple[Collaborator, bool]:
    row = await session.scalar(
        select(MapInvitation).where(MapInvitation.map_id == map_.id, MapInvitation.email == email)
    )
    created = row is None
    if row is None:
        row = MapInvitation(
            map_id=map_.id,
            email=email,
            permission=permission,
            invited_by=inviter.id,
            invited_at=utcnow(),
        )
        session.add(row)
    else:
        row.permission = permission
    await session.commit()
    return (
        Collaborator(None, email, None, None, row.permission, "pending", row.invited_at, None),
        created,
    )


async def remove(session: AsyncSession, *, map_: Map, who: str) -> uuid.UUID | None:
    """Remove a collaborator (by user id or e-mail) or a pending invitation (by e-mail);
    returns the removed collaborator's user id (None when only an invitation went)."""
    try:
        user_id: uuid.UUID | None = uuid.UUID(who)
    except ValueError:
        user_id = None
    if user_id is not None:
        if await _delete_collaborator(session, map_=map_, user_id=user_id):
            await session.commit()
            return user_id
        raise NotFound("Collaborator not found")
    email = users.normalize_email(who)
    # An e-mail names an active collaborator as well as a pending invitation: remove both.
    member = await users.get_by_email(session, email=email) if email else None
    removed = None
    if member is not None and await _delete_collaborator(session, map_=map_, user_id=member.id):
        removed = member.id
    result = await session.execute(
        delete(MapInvitation).where(MapInvitation.map_id == map_.id, MapInvitation.email == email)
    )
    if removed is None and not getattr(result, "rowcount", 0):
        raise NotFound("No collaborator or invitation with this e-mail")
    await session.commit()
    return removed


async def _delete_collaborator(session: AsyncSession, *, map_: Map, user_id: uuid.UUID) -> bool:
    result = await session.execute(
        delete(MapCollaborator).where(
            MapCollaborator.map_id == map_.id, MapCollaborator.user_id == user_id
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def claim_invitations(session: AsyncSession, *, user: User | None) -> int:
    """Turn the pending invitations for the user's e-mail into collaborator rows."""
    if user is None or not user.email:
        return 0
    email = users.normalize_email(user.email)
    pending = [*await session.scalars(select(MapInvitation).where(MapInvitation.email == email))]
    if not pending:
        return 0
    existing = set(
        await session.scalars(
            select(MapCollaborator.map_id).where(
                MapCollaborator.user_id == user.id,
                MapCollaborator.map_id.in_([p.map_id for p in pending]),
            )
        )
    )
    owned = set(
        await session.scalars(
            select(Map.id).where(Map.id.in_([p.map_id for p in pending]), Map.created_by == user.id)
        )
    )
    for invitation in pending:
        if invitation.map_id not in existing and invitation.map_id not in owned:
            session.add(
                MapCollaborator(
                    map_id=invitation.map_id,
                    user_id=user.id,
                    permission=invitation.permission,
                    invited_at=invitation.invited_at,
                )
            )
        await session.delete(invitation)
    try:
        await session.commit()
    except IntegrityError:  # claimed by a concurrent request of the same user
        await session.rollback()
        return 0
    return len(pending)


async def count(session: AsyncSession, *, map_id: uuid.UUID) -> int:
    total = await session.scalar(
        select(func.count()).select_from(MapCollaborator).where(MapCollaborator.map_id == map_id)
    )
    return int(total or 0)
