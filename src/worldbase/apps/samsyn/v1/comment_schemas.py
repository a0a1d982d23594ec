"""SamSyn's comment shapes (`/api/v1/comments`): flat comments with `author_name` and
`reply_count`, threads with nested `replies`."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic.config import JsonDict

from worldbase.apps.samsyn.models import Comment
from worldbase.core.models import User
from worldbase.core.schemas import InputSchema, Schema, UTCDateTime, examples

DELETED_USER = "Deleted User"  # the author of a comment whose account was deleted


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("Comment content cannot be empty or whitespace")
    return value


Content = Annotated[str, Field(min_length=1, max_length=10_000), AfterValidator(_not_blank)]

_AT = "2025-01-01T12:00:00Z"
_EXAMPLE: JsonDict = {
    "id": "6f1c2a5e-3b7d-4e8f-9a0b-1c2d3e4f5a6b",
    "content": "Should this zone extend further north?",
    "author_id": "3f2b6c1e-8a4d-4c3e-9b1a-2d5e6f7a8b9c",
    "map_id": "0b7e9a1c-2d3f-4a5b-8c6d-7e8f9a0b1c2d",
    "layer_id": None,
    "parent_id": None,
    "is_resolved": False,
    "created_at": _AT,
    "updated_at": _AT,
    "author_name": "Ada Lovelace",
    "reply_count": 1,
}


class V1CommentCreate(InputSchema):
    """A comment on a map or a layer (exactly one), or a reply (`parent_id`) on the same one."""

    content: Content
    map_id: uuid.UUID | None = None
    layer_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None

    model_config = examples(
        {"content": "Should this zone extend further north?", "map_id": _EXAMPLE["map_id"]},
        forbid=True,
    )


class V1CommentUpdate(InputSchema):
    content: Content | None = None

    model_config = examples({"content": "Should it extend to 56°N?"}, forbid=True)


class CommentResponse(Schema):
    id: uuid.UUID
    content: str
    author_id: uuid.UUID
    map_id: uuid.UUID | None
    layer_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    is_resolved: bool
    created_at: UTCDateTime
    updated_at: UTCDateTime
    author_name: str | None
    reply_count: int

    model_config = examples(_EXAMPLE)


class CommentWithReplies(CommentResponse):
    replies: list[CommentWithReplies] = Field(default_factory=list)

    model_config = examples(
        _EXAMPLE
        | {
            "replies": [
                _EXAMPLE
                | {
                    "id": "7a2d3b6f-4c8e-4f90-8b1c-2d3e4f5a6b7c",
                    "content": "Yes, to 56°N.",
                    "parent_id": _EXAMPLE["id"],
                    "reply_count": 0,
                    "replies": [],
                }
            ]
        }
    )


class CommentDeleted(Schema):
    status: str

    model_config = examples({"status": "deleted"})


def author_name(author: User | None) -> str | None:
    if author is None or not author.is_active:
        return DELETED_USER
    return author.name  # never the e-mail: every reader of the map sees this


def comment_response(comment: Comment, author: User | None, replies: int) -> CommentResponse:
    return CommentResponse(
        id=comment.id,
        content=comment.content,
        author_id=comment.author_id,
        map_id=comment.map_id,
        layer_id=comment.layer_id,
        parent_id=comment.parent_id,
        is_resolved=comment.is_resolved,
        created_at=comment.created_at,
        updated_at=comment.updated_at,
        author_name=author_name(author),
        reply_count=replies,
    )
