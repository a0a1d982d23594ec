"""dnd: image assets and the scene cache

Revision ID: 0002_dnd
Revises: 0001_core
Create Date: 2026-11-23 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_dnd"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("dnd",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "image_assets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("subject_name", sa.String(length=200), nullable=False),
        sa.Column("component", sa.String(length=50), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("custom_prompt", sa.Text(), nullable=True),
        sa.Column("aspect_ratio", sa.String(length=10), nullable=False),
        sa.Column("provider", sa.String(length=30), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("storage_path_full", sa.String(length=500), nullable=False),
        sa.Column("storage_path_thumbnail", sa.String(length=500), nullable=False),
        sa.Column("file_size_bytes", sa.Integer(), nullable=False),
        sa.Column("generation_time_ms", sa.Integer(), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=True),
        sa.Column("is_featured", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("use_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_image_assets_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_assets")),
    )
    op.create_index(
        "ix_image_assets_subject", "image_assets", ["subject_name", "subject_type"], unique=False
    )
    op.create_index(
        "ix_image_assets_listing",
        "image_assets",
        ["is_deleted", "is_featured", "created_at"],
        unique=False,
    )
    op.create_index("ix_image_assets_source_hash", "image_assets", ["source_hash"], unique=False)
    op.create_index(
        op.f("ix_image_assets_created_by"), "image_assets", ["created_by"], unique=False
    )
    op.create_table(
        "scene_cache",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cache_key", sa.String(length=400), nullable=False),
        sa.Column("location", sa.String(length=100), nullable=False),
        sa.Column("time_of_day", sa.String(length=50), nullable=False),
        sa.Column("weather", sa.String(length=100), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("hit_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("miss_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_accessed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["image_assets.id"],
            name=op.f("fk_scene_cache_image_id_image_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scene_cache")),
        sa.UniqueConstraint("cache_key", name=op.f("uq_scene_cache_cache_key")),
    )
    op.create_index("ix_scene_cache_expires_at", "scene_cache", ["expires_at"], unique=False)
    op.create_index(op.f("ix_scene_cache_image_id"), "scene_cache", ["image_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_scene_cache_image_id"), table_name="scene_cache")
    op.drop_index("ix_scene_cache_expires_at", table_name="scene_cache")
    op.drop_table("scene_cache")
    op.drop_index(op.f("ix_image_assets_created_by"), table_name="image_assets")
    op.drop_index("ix_image_assets_source_hash", table_name="image_assets")
    op.drop_index("ix_image_assets_listing", table_name="image_assets")
    op.drop_index("ix_image_assets_subject", table_name="image_assets")
    op.drop_table("image_assets")
