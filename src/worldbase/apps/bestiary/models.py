"""Bestiary tables: the seed's `characters`, `favorites` and `export_jobs`, plus the uploads
and reconstruction jobs of the photogrammetry pipeline.

Files (portraits, models, exports, photos, meshes) live in object storage; the rows keep
their keys. A reconstruction job is a core `jobs` row (status, progress, attempts, cancel)
plus a `reconstruction_jobs` row with what only this app knows (stage, log tail, result).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from worldbase.core.db import Base, TimestampMixin, utcnow


class Character(TimestampMixin, Base):
    __tablename__ = "characters"
    __table_args__ = (
        # The seed: "index on frequently queried fields (name, race, level)".
        Index("ix_characters_name", "name"),
        Index("ix_characters_race", "race"),
        Index("ix_characters_level", "level"),
        Index("ix_characters_faction", "faction"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    race: Mapped[str | None] = mapped_column(String(100))
    level: Mapped[int | None] = mapped_column(Integer)
    location: Mapped[str | None] = mapped_column(String(255))
    faction: Mapped[str | None] = mapped_column(String(100))
    difficulty: Mapped[str | None] = mapped_column(String(50))
    description: Mapped[str | None] = mapped_column(Text)
    image_path: Mapped[str | None] = mapped_column(String(500))
    thumbnail_path: Mapped[str | None] = mapped_column(String(500))
    model_path: Mapped[str | None] = mapped_column(String(500))
    stats: Mapped[dict[str, Any] | None] = mapped_column()
    skills: Mapped[dict[str, Any] | None] = mapped_column()
    combat: Mapped[dict[str, Any] | None] = mapped_column()


class Favorite(Base):
    __tablename__ = "favorites"
    __table_args__ = (UniqueConstraint("user_id", "character_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    character_id: Mapped[int] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExportStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"


class ExportJob(Base):
    __tablename__ = "export_jobs"
    __table_args__ = (
        # Identical requests (same character, format and model file) reuse one export.
        Index("ix_export_jobs_reuse", "character_id", "format", "source_path"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(50), default=ExportStatus.queued.value)
    file_path: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    # The model file this export was made from: a new model makes old exports stale.
    source_path: Mapped[str] = mapped_column(String(500))
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    job_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()


class ReconstructionUpload(Base):
    __tablename__ = "reconstruction_uploads"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(20))  # images | zip | video (or a mix)
    image_count: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReconstructionJob(TimestampMixin, Base):
    __tablename__ = "reconstruction_jobs"

    # The core job's id: status, progress, cancel and retries are the core's.
    id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    upload_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reconstruction_uploads.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stage: Mapped[str] = mapped_column(String(50), default="queued")
    log: Mapped[str] = mapped_column(Text, default="")
    result_path: Mapped[str | None] = mapped_column(String(500))
    stats: Mapped[dict[str, Any] | None] = mapped_column()
