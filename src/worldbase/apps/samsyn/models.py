"""SamSyn tables, as the seed's ER diagram (users are the platform's `users` table).

One table the diagram lacks: `map_invitations`, pending invitations for e-mail addresses
that have no account yet; they turn into `map_collaborators` rows when that person signs
in and lists or opens maps (see `service_collaborators.claim_invitations`).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from worldbase.core.db import Base, TimestampMixin, UUIDPrimaryKey, utcnow
from worldbase.geo.spatial import Geometry, spatial_index


class PermissionLevel(enum.StrEnum):
    private = "private"
    collaborators = "collaborators"
    public = "public"


class SourceType(enum.StrEnum):
    wms = "wms"
    geotiff = "geotiff"
    vector = "vector"


class Editable(enum.StrEnum):
    creator_only = "creator-only"
    everyone = "everyone"


class LayerVisibility(enum.StrEnum):
    """Whether a layer shows in everyone's library (SamSyn's `visibility`)."""

    private = "private"
    public = "public"


class CreationSource(enum.StrEnum):
    """How a layer was made (SamSyn's `creation_source`; its "My layers" are `layer_creator`)."""

    layer_creator = "layer_creator"
    admin_panel = "admin_panel"
    system = "system"


class CollaboratorPermission(enum.StrEnum):
    view = "view"
    edit = "edit"


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # Stored as the seed's values ("creator-only"), checked by a constraint on both backends.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=20,
        values_callable=lambda members: [m.value for m in members],
        create_constraint=True,
    )


class Map(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "maps"
    __table_args__ = (
        Index("idx_maps_created_by", "created_by"),
        Index("idx_maps_permission", "permission_level"),
    )

    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    center_lat: Mapped[float] = mapped_column(Float, default=0.0)
    center_lng: Mapped[float] = mapped_column(Float, default=0.0)
    zoom: Mapped[float] = mapped_column(Float, default=2.0)
    basemap: Mapped[str | None] = mapped_column(String(2048))
    permission_level: Mapped[PermissionLevel] = mapped_column(
        _enum(PermissionLevel, "map_permission_level"), default=PermissionLevel.private
    )
    # Who edits besides the owner: nobody (`private`), editor collaborators (`collaborators`,
    # what `/api` maps have), every signed-in reader (`public`). See `access.map_role`.
    edit_permission: Mapped[PermissionLevel] = mapped_column(
        _enum(PermissionLevel, "map_edit_permission"),
        default=PermissionLevel.collaborators,
        server_default=PermissionLevel.collaborators.value,
    )
    map_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class Layer(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "layers"
    __table_args__ = (
        Index("idx_layers_created_by", "created_by"),
        Index("idx_layers_is_global", "is_global"),
        Index("idx_layers_category", "category"),
        Index("idx_layers_source_type", "source_type"),
        Index("idx_layers_visibility", "visibility"),
    )

    name: Mapped[str] = mapped_column(String(255))
    source_type: Mapped[SourceType] = mapped_column(_enum(SourceType, "layer_source_type"))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    editable: Mapped[Editable] = mapped_column(
        _enum(Editable, "layer_editable"), default=Editable.creator_only
    )
    is_global: Mapped[bool] = mapped_column(default=False)
    # `public`: readable by everyone (anonymous callers too), as SamSyn's library shows it.
    visibility: Mapped[LayerVisibility] = mapped_column(
        _enum(LayerVisibility, "layer_visibility"),
        default=LayerVisibility.private,
        server_default=LayerVisibility.private.value,
    )
    creation_source: Mapped[CreationSource] = mapped_column(
        _enum(CreationSource, "layer_creation_source"),
        default=CreationSource.system,
        server_default=CreationSource.system.value,
    )
    source_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    style_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    legend_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # `metadata` is reserved on declarative classes: the attribute is `meta`, the column keeps
    # the seed's name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)


class LayerFeature(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "layer_features"
    __table_args__ = (
        Index("idx_features_layer_id", "layer_id", "display_order"),
        # Every feature query names its layer: GiST over (layer_id, geometry).
        spatial_index("layer_features", "geometry", leading="layer_id"),
    )

    layer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("layers.id", ondelete="CASCADE"))
    geometry: Mapped[BaseGeometry] = mapped_column(Geometry())
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    display_order: Mapped[int] = mapped_column(Integer, default=0)
    feature_type: Mapped[str | None] = mapped_column(String(100))  # SamSyn's category


class MapLayer(UUIDPrimaryKey, Base):
    __tablename__ = "map_layers"
    __table_args__ = (
        Index("idx_map_layers_map", "map_id"),
        Index("idx_map_layers_layer", "layer_id"),
        UniqueConstraint("map_id", "layer_id", name="idx_map_layers_unique"),
    )

    map_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("maps.id", ondelete="CASCADE"))
    layer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("layers.id", ondelete="CASCADE"))
    display_order: Mapped[int] = mapped_column(Integer, default=0)
    is_visible: Mapped[bool] = mapped_column(default=True)
    opacity: Mapped[float] = mapped_column(Float, default=1.0)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class MapCollaborator(UUIDPrimaryKey, Base):
    __tablename__ = "map_collaborators"
    __table_args__ = (
        Index("idx_collaborators_map", "map_id"),
        Index("idx_collaborators_user", "user_id"),
        UniqueConstraint("map_id", "user_id", name="idx_collaborators_unique"),
    )

    map_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("maps.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    permission: Mapped[CollaboratorPermission] = mapped_column(
        _enum(CollaboratorPermission, "collaborator_permission")
    )
    invited_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column()


class MapInvitation(UUIDPrimaryKey, Base):
    """An invitation for an e-mail address without an account (not in the seed's diagram)."""

    __tablename__ = "map_invitations"
    __table_args__ = (
        Index("idx_map_invitations_email", "email"),
        UniqueConstraint("map_id", "email", name="idx_map_invitations_unique"),
    )

    map_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("maps.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    permission: Mapped[CollaboratorPermission] = mapped_column(
        _enum(CollaboratorPermission, "collaborator_permission")
    )
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    invited_at: Mapped[datetime] = mapped_column(default=utcnow)


class Comment(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "comments"
    __table_args__ = (
        Index("idx_comments_author", "author_id"),
        Index("idx_comments_map", "map_id"),
        Index("idx_comments_layer", "layer_id"),
        Index("idx_comments_parent", "parent_id"),
        # Exactly one target: the map or the layer.
        CheckConstraint("(map_id IS NULL) <> (layer_id IS NULL)", name="one_target"),
    )

    content: Mapped[str] = mapped_column(Text)
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    map_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("maps.id", ondelete="CASCADE"))
    layer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("layers.id", ondelete="CASCADE"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE")
    )
    is_resolved: Mapped[bool] = mapped_column(default=False)


class WmsServer(UUIDPrimaryKey, TimestampMixin, Base):
    """A WMS in the shared registry, with its capabilities as last read (SamSyn's
    `wms_servers`): any visitor browses it, admins keep it."""

    __tablename__ = "wms_servers"

    name: Mapped[str] = mapped_column(String(255))
    base_url: Mapped[str] = mapped_column(String(2048), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(String(20))
    service_title: Mapped[str | None] = mapped_column(Text)
    service_provider: Mapped[str | None] = mapped_column(Text)
    layer_count: Mapped[int] = mapped_column(Integer, default=0)
    capabilities_cache: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cached_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
