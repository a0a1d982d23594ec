"""Core API schemas: the shared base model and the identity schemas.

Every schema in Worldbase derives from `Schema` and is named `XCreate / XUpdate / XRead /
XPage`; `from_attributes` lets routes return ORM objects directly.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, HttpUrl, TypeAdapter
from pydantic.config import JsonDict


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A timestamp that always serializes with its offset (`...Z`), on SQLite as on PostgreSQL.
UTCDateTime = Annotated[datetime, AfterValidator(_as_utc)]

_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _http_url(value: str) -> str:
    # pydantic's HttpUrl admits only http(s) with a host: `javascript:`, `data:` and
    # `file:` URLs are refused. The text is kept as given (no normalising slash added).
    _HTTP_URL.validate_python(value)
    return value


# A link a client may render (avatars, images): http(s) only.
WebUrl = Annotated[str, Field(max_length=2048), AfterValidator(_http_url)]


def web_url_or_none(value: object) -> str | None:
    """`value` if it is an http(s) URL of at most 2048 characters, else None (for data from
    identity providers, where a bad picture must not refuse the whole user)."""
    if not isinstance(value, str) or not value or len(value) > 2048:
        return None
    try:
        return _http_url(value)
    except ValueError:
        return None


# Serial (INTEGER) keys: PostgreSQL refuses a larger value with an error (once a 500, for
# 9223372036854775808 as for 2**31), so every id in a body or a path is bounded here: 422.
SERIAL_MAX = 2**31 - 1
SerialId = Annotated[int, Field(ge=1, le=SERIAL_MAX)]


def serial_id_path(description: str, **kwargs: Any) -> Any:
    """`Path(...)` of a serial id, bounded like `SerialId`."""
    return Path(ge=1, le=SERIAL_MAX, description=description, **kwargs)


# The paging query parameters of every list route (the default limit is each route's own).
PageLimit = Annotated[int, Query(ge=1, le=200)]
PageOffset = Annotated[int, Query(ge=0, le=1_000_000)]


def examples(*examples: JsonDict, forbid: bool = False) -> ConfigDict:
    """A model_config with OpenAPI examples (`forbid`: unknown fields are an error)."""
    config = ConfigDict(from_attributes=True, json_schema_extra={"examples": list(examples)})
    if forbid:
        config["extra"] = "forbid"
    return config


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class InputSchema(Schema):
    """Request bodies: unknown fields are an error rather than silently dropped."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")


_USER_EXAMPLE: JsonDict = {
    "id": "3f2b6c1e-8a4d-4c3e-9b1a-2d5e6f7a8b9c",
    "email": "ada@example.org",
    "name": "Ada",
    "avatar_url": None,
    "is_admin": False,
    "created_at": "2025-01-01T12:00:00Z",
}


class UserRead(Schema):
    id: uuid.UUID
    email: str | None
    name: str | None
    avatar_url: str | None
    is_admin: bool
    created_at: UTCDateTime

    model_config = examples(_USER_EXAMPLE)


class UserCreate(InputSchema):
    email: EmailStr
    password: str = Field(min_length=8, max_length=128)
    name: str | None = Field(default=None, max_length=255)

    model_config = examples(
        {"email": "ada@example.org", "password": "correct horse battery", "name": "Ada"},
        forbid=True,
    )


class UserUpdate(InputSchema):
    name: str | None = Field(default=None, max_length=255)
    avatar_url: WebUrl | None = None

    model_config = examples(
        {"name": "Ada Lovelace", "avatar_url": "https://example.org/ada.png"}, forbid=True
    )


class LoginRequest(InputSchema):
    # Not EmailStr: an operator's admin address (e.g. admin@localhost) must still log in.
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=128)

    model_config = examples(
        {"email": "ada@example.org", "password": "correct horse battery"}, forbid=True
    )


class TokenRead(Schema):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")
    user: UserRead

    model_config = examples(
        {
            "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
            "token_type": "bearer",
            "expires_in": 3600,
            "user": _USER_EXAMPLE,
        }
    )
