"""Shapes shared by several `/api/v1` areas: SamSyn's `UserResponse`."""

import uuid

from pydantic import BaseModel

from worldbase.core.models import User
from worldbase.core.schemas import UTCDateTime


class UserResponse(BaseModel):
    """A user as SamSyn shows one (collaborators, creators, `/users/me`)."""

    id: uuid.UUID
    clerk_id: str | None
    email: str | None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    profile_image_url: str | None = None
    created_at: UTCDateTime
    updated_at: UTCDateTime


def user_response(user: User) -> UserResponse:
    """SamSyn's user fields from ours: `name` is "first last", `avatar_url` the image."""
    first, _, last = (user.name or "").partition(" ")
    return UserResponse(
        id=user.id,
        clerk_id=user.clerk_id,
        email=user.email,
        username=None,
        first_name=first or None,
        last_name=last or None,
        profile_image_url=user.avatar_url,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )
