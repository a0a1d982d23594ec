"""Tables of the dnd app: the seed's `image_assets` and `scene_cache`.

Image bytes live in object storage (`storage_path_full`, `storage_path_thumbnail`), never
in the database.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from worldbase.core.db import Base, utcnow


class ImageAsset(Base):
    __tablename__ = "image_assets"
    __table_args__ = (
        # Search: filter by subject, then featured first, newest first.
        Index("ix_image_assets_subject", "subject_name", "subject_type"),
        Index("ix_image_assets_listing", "is_deleted", "is_featured", "created_at"),
        Index("ix_image_assets_source_hash", "source_hash"),
        # GET /dnd/images/...: the stored path served as a URL finds its row.
        Index("ix_image_assets_storage_path_full", "storage_path_full"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_name: Mapped[str] = mapped_column(String(200))
    component: Mapped[str] = mapped_column(String(50))
    prompt: Mapped[str] = mapped_column(Text)
    custom_prompt: Mapped[str | None] = mapped_column(Text)
    aspect_ratio: Mapped[str] = mapped_column(String(10))
    provider: Mapped[str] = mapped_column(String(30))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    storage_path_full: Mapped[str] = mapped_column(String(500))
    storage_path_thumbnail: Mapped[str] = mapped_column(String(500))
    file_size_bytes: Mapped[int] = mapped_column(Integer)
    generation_time_ms: Mapped[int] = mapped_column(Integer)
    # SHA-256 of the original bytes of a migrated image: makes the migration idempotent.
    source_hash: Mapped[str | None] = mapped_column(String(64))
    is_featured: Mapped[bool] = mapped_column(default=False, server_default="0")
    is_deleted: Mapped[bool] = mapped_column(default=False, server_default="0")
    use_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column()


class SceneCache(Base):
    __tablename__ = "scene_cache"
    __table_args__ = (Index("ix_scene_cache_expires_at", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Normalized "location|time_of_day|weather" (lower case, single spaces).
    cache_key: Mapped[str] = mapped_column(String(400), unique=True)
    location: Mapped[str] = mapped_column(String(100))
    time_of_day: Mapped[str] = mapped_column(String(50))
    weather: Mapped[str] = mapped_column(String(100))
    image_id: Mapped[int] = mapped_column(
        ForeignKey("image_assets.id", ondelete="CASCADE"), index=True
    )
    hit_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    miss_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    last_accessed_at: Mapped[datetime | None] = mapped_column()

    image: Mapped[ImageAsset] = relationship(lazy="joined")
