"""bestiary: characters, favorites, export jobs, reconstruction uploads and jobs

Revision ID: 0002_bestiary
Revises: 0001_core
Create Date: 2026-11-23 07:53:15
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_bestiary"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("bestiary",)
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "characters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("race", sa.String(length=100), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("faction", sa.String(length=100), nullable=True),
        sa.Column("difficulty", sa.String(length=50), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("image_path", sa.String(length=500), nullable=True),
        sa.Column("thumbnail_path", sa.String(length=500), nullable=True),
        sa.Column("model_path", sa.String(length=500), nullable=True),
        sa.Column("stats", JSON, nullable=True),
        sa.Column("skills", JSON, nullable=True),
        sa.Column("combat", JSON, nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_characters")),
    )
    with op.batch_alter_table("characters", schema=None) as batch_op:
        batch_op.create_index("ix_characters_faction", ["faction"], unique=False)
        batch_op.create_index("ix_characters_level", ["level"], unique=False)
        batch_op.create_index("ix_characters_name", ["name"], unique=False)
        batch_op.create_index("ix_characters_race", ["race"], unique=False)

    op.create_table(
        "export_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("character_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("file_path", sa.String(length=500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("source_path", sa.String(length=500), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["character_id"],
            ["characters.id"],
            name=op.f("fk_export_jobs_character_id_characters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_export_jobs_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_jobs")),
    )
    with op.batch_alter_table("export_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_export_jobs_reuse", ["character_id", "format", "source_path"], unique=False
        )

    op.create_table(
        "favorites",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("character_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["character_id"],
            ["characters.id"],
            name=op.f("fk_favorites_character_id_characters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_favorites_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favorites")),
        sa.UniqueConstraint(
            "user_id", "character_id", name=op.f("uq_favorites_user_id_character_id")
        ),
    )
    with op.batch_alter_table("favorites", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_favorites_character_id"), ["character_id"], unique=False
        )

    op.create_table(
        "reconstruction_uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("image_count", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_reconstruction_uploads_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconstruction_uploads")),
    )
    with op.batch_alter_table("reconstruction_uploads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconstruction_uploads_owner_id"), ["owner_id"], unique=False
        )

    op.create_table(
        "reconstruction_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("upload_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("stage", sa.String(length=50), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("result_path", sa.String(length=500), nullable=True),
        sa.Column("stats", JSON, nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["id"], ["jobs.id"], name=op.f("fk_reconstruction_jobs_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_reconstruction_jobs_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["reconstruction_uploads.id"],
            name=op.f("fk_reconstruction_jobs_upload_id_reconstruction_uploads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconstruction_jobs")),
    )
    with op.batch_alter_table("reconstruction_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconstruction_jobs_owner_id"), ["owner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reconstruction_jobs_upload_id"), ["upload_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reconstruction_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconstruction_jobs_upload_id"))
        batch_op.drop_index(batch_op.f("ix_reconstruction_jobs_owner_id"))

    op.drop_table("reconstruction_jobs")
    with op.batch_alter_table("reconstruction_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconstruction_uploads_owner_id"))

    op.drop_table("reconstruction_uploads")
    with op.batch_alter_table("favorites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_favorites_character_id"))

    op.drop_table("favorites")
    with op.batch_alter_table("export_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_export_jobs_reuse")

    op.drop_table("export_jobs")
    with op.batch_alter_table("characters", schema=None) as batch_op:
        batch_op.drop_index("ix_characters_race")
        batch_op.drop_index("ix_characters_name")
        batch_op.drop_index("ix_characters_level")
        batch_op.drop_index("ix_characters_faction")

    op.drop_table("characters")
