"""samsyn: wms_servers, the shared registry of WMS servers (SamSyn's `/api/v1/wms-servers`)

Revision ID: 0007_samsyn_wms_servers
Revises: 0004_samsyn_layer_gist
Create Date: 2026-12-07 01:00:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_samsyn_wms_servers"
down_revision: str | None = "0006_samsyn_v1_maps_layers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> "sa.Column[Any]":
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.text("CURRENT_TIMESTAMP"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "wms_servers",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.String(length=20), nullable=True),
        sa.Column("service_title", sa.Text(), nullable=True),
        sa.Column("service_provider", sa.Text(), nullable=True),
        sa.Column("layer_count", sa.Integer(), nullable=False),
        sa.Column(
            "capabilities_cache",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("cached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_wms_servers_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wms_servers")),
        sa.UniqueConstraint("base_url", name=op.f("uq_wms_servers_base_url")),
    )


def downgrade() -> None:
    op.drop_table("wms_servers")
