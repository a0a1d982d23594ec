"""`/api/v1/users` in SamSyn's shapes: the caller's account, and closing it.

Closing an account (`DELETE /me`, and Clerk's `user.deleted` webhook on `/api/v1`) hands its
maps over (`maps.handover`), ends its collaborations and deactivates it (`core.users`): its
name, e-mail and picture are forgotten, its tokens stop working at once (403) and its live
sockets close. The row stays as the "Deleted User" that its layers and comments show.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.maps.handover import hand_over
from worldbase.apps.samsyn.v1.shapes import UserResponse, user_response
from worldbase.core import users
from worldbase.core.auth import CurrentUser
from worldbase.core.db import Session
from worldbase.core.models import User
from worldbase.core.schemas import Schema, examples
from worldbase.core.services import CacheDep, HubDep

router = APIRouter(prefix="/users", tags=["samsyn v1: users"])


class AccountDeleted(Schema):
    status: str
    message: str

    model_config = examples({"status": "success", "message": "Your account has been deleted"})


async def hand_over_samsyn(session: AsyncSession, user: User) -> None:
    """What samsyn does before an account closes (`core.api.webhooks.OnDelete`)."""
    await hand_over(session, user=user)


@router.get("/me", response_model=UserResponse, summary="The signed-in user, as SamSyn shows one")
async def get_me(user: CurrentUser) -> UserResponse:
    return user_response(user)


@router.delete(
    "/me",
    response_model=AccountDeleted,
    summary="Close the caller's account: maps to their collaborators, personal data forgotten",
)
async def delete_me(
    user: CurrentUser, session: Session, hub: HubDep, cache: CacheDep
) -> AccountDeleted:
    await hand_over_samsyn(session, user)
    await users.deactivate(session, user=user, hub=hub, cache=cache)
    return AccountDeleted(status="success", message="Your account has been deleted")
