"""osm: data sources, objects, object history, validation log

Revision ID: 0002_osm
Revises: 0001_core
Create Date: 2026-11-23 05:55:17.623215
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from worldbase.geo.spatial import Geometry, add_spatial_index, drop_spatial_index

revision: str = "0002_osm"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("osm",)
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamps() -> list[sa.Column]:
    return [
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
    ]


def upgrade() -> None:
    op.create_table(
        "data_sources",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("connection_info", JSON, nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("area", JSON, nullable=True),
        sa.Column("tag_filter", JSON, nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("sequence_number", sa.BigInteger(), nullable=True),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ingest_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_sources")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_data_sources_token_hash")),
    )
    op.create_index("ix_data_sources_name", "data_sources", ["name"])

    op.create_table(
        "osm_objects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("osm_id", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("geom", Geometry(geometry_type="GEOMETRY"), nullable=True),
        sa.Column("refs", JSON, nullable=True),
        sa.Column("source_id", sa.String(length=36), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changeset", sa.BigInteger(), nullable=True),
        sa.Column("user", sa.String(length=255), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["data_sources.id"],
            name=op.f("fk_osm_objects_source_id_data_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_osm_objects")),
        sa.UniqueConstraint("type", "osm_id", name=op.f("uq_osm_objects_type_osm_id")),
    )
    op.create_index("ix_osm_objects_source_id", "osm_objects", ["source_id"])
    op.create_index("ix_osm_objects_updated_at", "osm_objects", ["updated_at"])
    if op.get_context().dialect.name == "postgresql":
        op.create_index("ix_osm_objects_tags", "osm_objects", ["tags"], postgresql_using="gin")
    add_spatial_index(op, "osm_objects", "geom")

    op.create_table(
        "osm_object_history",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("geom_wkb", sa.LargeBinary(), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changeset", sa.BigInteger(), nullable=True),
        sa.Column("user", sa.String(length=255), nullable=True),
        sa.Column("source_id", sa.String(length=36), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["osm_objects.id"],
            name=op.f("fk_osm_object_history_object_id_osm_objects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["data_sources.id"],
            name=op.f("fk_osm_object_history_source_id_data_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_osm_object_history")),
    )
    op.create_index(
        "ix_osm_object_history_object_id_version", "osm_object_history", ["object_id", "version"]
    )

    op.create_table(
        "osm_validation_log",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source_id", sa.String(length=36), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("osm_type", sa.String(length=10), nullable=True),
        sa.Column("osm_id", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["data_sources.id"],
            name=op.f("fk_osm_validation_log_source_id_data_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_osm_validation_log")),
    )
    op.create_index("ix_osm_validation_log_created_at", "osm_validation_log", ["created_at"])
    op.create_index("ix_osm_validation_log_source_id", "osm_validation_log", ["source_id"])


def downgrade() -> None:
    op.drop_index("ix_osm_validation_log_source_id", table_name="osm_validation_log")
    op.drop_index("ix_osm_validation_log_created_at", table_name="osm_validation_log")
    op.drop_table("osm_validation_log")
    op.drop_index("ix_osm_object_history_object_id_version", table_name="osm_object_history")
    op.drop_table("osm_object_history")
    drop_spatial_index(op, "osm_objects", "geom")
    if op.get_context().dialect.name == "postgresql":
        op.drop_index("ix_osm_objects_tags", table_name="osm_objects")
    op.drop_index("ix_osm_objects_updated_at", table_name="osm_objects")
    op.drop_index("ix_osm_objects_source_id", table_name="osm_objects")
    op.drop_table("osm_objects")
    op.drop_index("ix_data_sources_name", table_name="data_sources")
    op.drop_table("data_sources")
