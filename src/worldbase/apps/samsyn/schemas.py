"""Request and response schemas of the samsyn app (maps, layers, collaborators, comments)."""

from __future__ import annotations

import uuid
from typing import Any, Generic, Literal, TypeVar

from pydantic import AliasChoices, EmailStr, Field, computed_field, model_validator
from pydantic.config import JsonDict

from worldbase.apps.samsyn.models import (
    CollaboratorPermission,
    Editable,
    PermissionLevel,
    SourceType,
)
from worldbase.apps.samsyn.wms import pending
from worldbase.core.schemas import InputSchema, Schema, UTCDateTime, examples

_ID = "6f1c2a5e-3b7d-4e8f-9a0b-1c2d3e4f5a6b"
_USER_ID = "3f2b6c1e-8a4d-4c3e-9b1a-2d5e6f7a8b9c"
_AT = "2025-01-01T12:00:00Z"


# --- Layers ------------------------------------------------------------------------------

_LAYER_EXAMPLE: JsonDict = {
    "id": _ID,
    "name": "Marine Protected Areas",
    "source_type": "vector",
    "description": "MPAs of the North Sea",
    "category": "conservation",
    "created_by": _USER_ID,
    "editable": "creator-only",
    "is_global": True,
    "source_config": {
        "geometryType": "Polygon",
        "geometryTypes": ["Polygon"],
        "featureCount": 23,
        "bounds": [[2.5, 51.2], [7.8, 55.9]],
        "revision": 23,
    },
    "style_config": {"stroke": "#14b8a6", "strokeWidth": 2, "fill": "#14b8a620"},
    "legend_config": {"type": "categories", "categories": []},
    "metadata": {"author": "NOAA", "doi": "10.5067/GHGMR-4FJ04"},
    "created_at": _AT,
    "updated_at": _AT,
}


# The seed's WMS-T layer (`seed.LAYERS` adds its elevation and credits).
SST_LAYER: dict[str, Any] = {
    "name": "Sea Surface Temperature - North Sea",
    "source_type": "wms",
    "category": "oceanography",
    "is_global": True,
    "source_config": {
        "url": "https://nrt.cmems-du.eu/thredds/wms/global-analysis-forecast-phy-001-024",
        "layers": "thetao",
        "version": "1.3.0",
        "format": "image/png",
        "transparent": True,
        "temporal": {
            "enabled": True,
            "parameter": "TIME",
            "start": "2020-01-01T00:00:00Z",
            "end": "2024-12-31T23:59:59Z",
            "resolution": "daily",
        },
    },
}


class LayerCreate(InputSchema):
    name: str = Field(min_length=1, max_length=255)
    source_type: SourceType
    description: str | None = Field(default=None, max_length=10_000)
    category: str | None = Field(default=None, max_length=100)
    editable: Editable = Editable.creator_only
    is_global: bool = False
    source_config: dict[str, Any] = Field(default_factory=dict)
    style_config: dict[str, Any] = Field(default_factory=dict)
    legend_config: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    model_config = examples(SST_LAYER | {"style_config": {"opacity": 0.7}}, forbid=True)


class LayerUpdate(InputSchema):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    source_type: SourceType | None = Field(default=None, description="Cannot change")
    description: str | None = Field(default=None, max_length=10_000)
    category: str | None = Field(default=None, max_length=100)
    editable: Editable | None = None
    is_global: bool | None = None
    source_config: dict[str, Any] | None = None
    style_config: dict[str, Any] | None = None
    legend_config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    model_config = examples(
        {"name": "MPAs (2024)", "style_config": {"stroke": "#ff0000"}}, forbid=True
    )


class LayerRead(Schema):
    id: uuid.UUID
    name: str
    source_type: SourceType
    description: str | None
    category: str | None
    created_by: uuid.UUID
    editable: Editable
    is_global: bool
    source_config: dict[str, Any]
    style_config: dict[str, Any]
    legend_config: dict[str, Any]
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("meta", "metadata"))
    created_at: UTCDateTime
    updated_at: UTCDateTime

    model_config = examples(_LAYER_EXAMPLE | {"warnings": []})

    @computed_field(  # type: ignore[prop-decorator]
        description="What the client should know about the saved layer, e.g. a WMS that "
        "could not be reached when it was saved (its capabilities are read later)"
    )
    @property
    def warnings(self) -> list[str]:
        return pending.warnings(self.source_config)


T = TypeVar("T")


class Page(Schema, Generic[T]):
    """A page of a list route: `items` and where they sit in the whole list."""

    items: list[T]
    total: int
    limit: int
    offset: int


class LayerPage(Page[LayerRead]):
    model_config = examples({"items": [_LAYER_EXAMPLE], "total": 1, "limit": 50, "offset": 0})


# --- Maps --------------------------------------------------------------------------------

_MAP_LAYER_EXAMPLE: JsonDict = {
    "id": "0b7e9a1c-2d3f-4a5b-8c6d-7e8f9a0b1c2d",
    "map_id": _ID,
    "layer_id": _ID,
    "display_order": 0,
    "is_visible": True,
    "opacity": 0.8,
    "added_at": _AT,
    "layer": _LAYER_EXAMPLE,
}
_MAP_EXAMPLE: JsonDict = {
    "id": _ID,
    "name": "North Sea plan",
    "description": "Offshore wind and MPAs",
    "center_lat": 54.5,
    "center_lng": 4.0,
    "zoom": 6.0,
    "basemap": "osm",
    "permission_level": "collaborators",
    "created_by": _USER_ID,
    "created_at": _AT,
    "updated_at": _AT,
    "role": "owner",
}


class MapCreate(InputSchema):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    center_lat: float = Field(default=0.0, ge=-90, le=90)
    center_lng: float = Field(default=0.0, ge=-180, le=180)
    zoom: float = Field(default=2.0, ge=0, le=24)
    basemap: str | None = Field(default="osm", max_length=2048)
    permission_level: PermissionLevel = PermissionLevel.private

    model_config = examples(
        {
            "name": "North Sea plan",
            "description": "Offshore wind and MPAs",
            "center_lat": 54.5,
            "center_lng": 4.0,
            "zoom": 6,
            "basemap": "osm",
            "permission_level": "private",
        },
        forbid=True,
    )


class MapUpdate(InputSchema):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    center_lat: float | None = Field(default=None, ge=-90, le=90)
    center_lng: float | None = Field(default=None, ge=-180, le=180)
    zoom: float | None = Field(default=None, ge=0, le=24)
    basemap: str | None = Field(default=None, max_length=2048)
    permission_level: PermissionLevel | None = None

    model_config = examples({"name": "North Sea plan 2025", "zoom": 7}, forbid=True)


class MapRead(Schema):
    id: uuid.UUID
    name: str
    description: str | None
    center_lat: float
    center_lng: float
    zoom: float
    basemap: str | None
    permission_level: PermissionLevel
    created_by: uuid.UUID
    created_at: UTCDateTime
    updated_at: UTCDateTime
    role: Literal["owner", "editor", "viewer", "public"] | None = Field(
        default=None, description="The caller's standing on this map"
    )

    model_config = examples(_MAP_EXAMPLE)


class MapLayerRead(Schema):
    id: uuid.UUID
    map_id: uuid.UUID
    layer_id: uuid.UUID
    display_order: int
    is_visible: bool
    opacity: float
    added_at: UTCDateTime
    layer: LayerRead | None = None

    model_config = examples(_MAP_LAYER_EXAMPLE)


class MapDetail(MapRead):
    layers: list[MapLayerRead]

    model_config = examples(_MAP_EXAMPLE | {"layers": [_MAP_LAYER_EXAMPLE]})


class MapPage(Page[MapRead]):
    model_config = examples({"items": [_MAP_EXAMPLE], "total": 1, "limit": 50, "offset": 0})


class MapLayerCreate(InputSchema):
    layer_id: uuid.UUID
    display_order: int | None = Field(default=None, ge=0, le=100_000)
    is_visible: bool = True
    opacity: float = Field(default=1.0, ge=0, le=1)

    model_config = examples(
        {"layer_id": _ID, "display_order": 0, "is_visible": True, "opacity": 0.8}, forbid=True
    )


class MapLayerUpdate(InputSchema):
    is_visible: bool | None = None
    opacity: float | None = Field(default=None, ge=0, le=1)

    model_config = examples({"is_visible": False, "opacity": 0.5}, forbid=True)


class LayerReorder(InputSchema):
    layer_ids: list[uuid.UUID] = Field(max_length=10_000, description="Every layer, new order")

    model_config = examples(
        {"layer_ids": [_ID, "0b7e9a1c-2d3f-4a5b-8c6d-7e8f9a0b1c2d"]}, forbid=True
    )


# --- Collaborators -----------------------------------------------------------------------

_COLLABORATOR_EXAMPLE: JsonDict = {
    "user_id": _USER_ID,
    "email": "ada@example.org",
    "name": "Ada",
    "avatar_url": None,
    "permission": "edit",
    "status": "active",
    "invited_at": _AT,
    "accepted_at": None,
}


class CollaboratorInvite(InputSchema):
    user_id: uuid.UUID | None = None
    email: EmailStr | None = None
    permission: CollaboratorPermission = CollaboratorPermission.view

    @model_validator(mode="after")
    def _one_of(self) -> CollaboratorInvite:
        if (self.user_id is None) == (self.email is None):
            raise ValueError("give exactly one of 'user_id' and 'email'")
        return self

    model_config = examples({"email": "ada@example.org", "permission": "edit"}, forbid=True)


class CollaboratorRead(Schema):
    user_id: uuid.UUID | None = Field(description="None while the invitation is pending")
    email: str | None
    name: str | None = None
    avatar_url: str | None = None
    permission: CollaboratorPermission
    status: Literal["active", "pending"]
    invited_at: UTCDateTime
    accepted_at: UTCDateTime | None = None

    model_config = examples(_COLLABORATOR_EXAMPLE)


class CollaboratorList(Schema):
    items: list[CollaboratorRead]

    model_config = examples({"items": [_COLLABORATOR_EXAMPLE]})


# --- Comments ----------------------------------------------------------------------------

_COMMENT_EXAMPLE: JsonDict = {
    "id": _ID,
    "content": "Should this zone extend further north?",
    "author_id": _USER_ID,
    "author": {"id": _USER_ID, "name": "Ada", "avatar_url": None},
    "map_id": "0b7e9a1c-2d3f-4a5b-8c6d-7e8f9a0b1c2d",
    "layer_id": None,
    "parent_id": None,
    "is_resolved": False,
    "created_at": _AT,
    "updated_at": _AT,
    "replies": [],
}


class CommentAuthor(Schema):
    id: uuid.UUID
    name: str | None
    avatar_url: str | None


class CommentCreate(InputSchema):
    content: str = Field(min_length=1, max_length=10_000)
    map_id: uuid.UUID | None = None
    layer_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None

    model_config = examples(
        {"content": "Should this zone extend further north?", "map_id": _ID}, forbid=True
    )


class CommentUpdate(InputSchema):
    content: str | None = Field(default=None, min_length=1, max_length=10_000)
    is_resolved: bool | None = None

    model_config = examples({"is_resolved": True}, forbid=True)


class CommentRead(Schema):
    id: uuid.UUID
    content: str
    author_id: uuid.UUID
    author: CommentAuthor | None = None
    map_id: uuid.UUID | None
    layer_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    is_resolved: bool
    created_at: UTCDateTime
    updated_at: UTCDateTime
    replies: list[CommentRead] = Field(default_factory=list)

    model_config = examples(_COMMENT_EXAMPLE)


class CommentPage(Page[CommentRead]):
    total: int = Field(description="Top-level threads (tree) or comments (flat)")
    format: Literal["tree", "flat"]

    model_config = examples(
        {"items": [_COMMENT_EXAMPLE], "total": 1, "limit": 50, "offset": 0, "format": "tree"}
    )


class UserMe(Schema):
    id: uuid.UUID
    clerk_id: str | None
    email: str | None
    name: str | None
    avatar_url: str | None
    is_admin: bool
    created_at: UTCDateTime
    updated_at: UTCDateTime

    model_config = examples(
        {
            "id": _USER_ID,
            "clerk_id": "user_2abc",
            "email": "ada@example.org",
            "name": "Ada",
            "avatar_url": None,
            "is_admin": False,
            "created_at": _AT,
            "updated_at": _AT,
        }
    )
