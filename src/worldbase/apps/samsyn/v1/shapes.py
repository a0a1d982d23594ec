"""Shapes shared by several `/api/v1` areas: SamSyn's `UserResponse`."""

import uuid

from pydantic import BaseModel

from worldbase.core.models import User
from worldbase.core.schemas import UTCDateTime, examples


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

    model_config = examples(
        {
            "id": "3f2b6c1e-8a4d-4c3e-9b1a-2d5e6f7a8b9c",
            "clerk_id": "user_2abc",
            "email": "ada@example.org",
            "username": None,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "profile_image_url": None,
            "created_at": "2025-01-01T12:00:00Z",
            "updated_at": "2025-01-01T12:00:00Z",
        }
    )


def user_response(user: User) -> UserResponse:
    """SamSyn's user fields from ours: username, first and last name as the identity provider
    gave them, `avatar_url` the image. A user who came in with only a display name (a password
    account, a token with just `name`) shows it split at its first space."""
    first, last = user.first_name, user.last_name
    if first is None and last is None and user.username is None and user.name:
        first, _, rest = user.name.partition(" ")
        last = rest or None
    return UserResponse(
        id=user.id,
        clerk_id=user.clerk_id,
        email=user.email,
        username=user.username,
        first_name=first,
        last_name=last,
        profile_image_url=user.avatar_url,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )
