"""What closing an account means for samsyn: its maps go on, its collaborations end.

Each map the account owns passes to its oldest editor, else its oldest viewer (who then
stops being a collaborator, being the owner); a map nobody shares stays with the closed
account, readable as before by whoever could, and managed by administrators. Layers and
comments stay where they are: the closed account (no name, no e-mail) is shown as their
creator or author.
"""

from __future__ import annotations

import uuid

from sqlalchemy import case, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.models import CollaboratorPermission, Map, MapCollaborator
from worldbase.core.models import User


async def hand_over(session: AsyncSession, *, user: User) -> dict[uuid.UUID, uuid.UUID]:
    """Move the account's maps to their heirs and end its collaborations, uncommitted (the
    caller closes the account in the same transaction); returns {map id: new owner id}."""
    heirs: dict[uuid.UUID, uuid.UUID] = {}
    editors_first = case((MapCollaborator.permission == CollaboratorPermission.edit, 0), else_=1)
    for map_ in await session.scalars(select(Map).where(Map.created_by == user.id)):
        heir = await session.scalar(
            select(MapCollaborator)
            .join(User, User.id == MapCollaborator.user_id)
            .where(
                MapCollaborator.map_id == map_.id,
                MapCollaborator.user_id != user.id,
                User.is_active.is_(True),
            )
            .order_by(editors_first, MapCollaborator.invited_at, MapCollaborator.id)
            .limit(1)
        )
        if heir is not None:
            map_.created_by = heir.user_id
            heirs[map_.id] = heir.user_id
            await session.delete(heir)
    await session.execute(delete(MapCollaborator).where(MapCollaborator.user_id == user.id))
    await session.flush()
    return heirs
