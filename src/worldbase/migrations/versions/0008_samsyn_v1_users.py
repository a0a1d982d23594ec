"""samsyn: layer_features.feature_type, SamSyn's optional feature category (`/api/v1`)

Revision ID: 0008_samsyn_v1_users
Revises: 0004_samsyn_layer_gist
Create Date: 2026-12-07 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_samsyn_v1_users"
down_revision: str | None = "0007_samsyn_wms_servers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("layer_features", sa.Column("feature_type", sa.String(100), nullable=True))


def downgrade() -> None:
    # A plain ALTER TABLE ... DROP COLUMN on both (SQLite >= 3.35): no batch copy of the
    # table, so SQLite's R*Tree triggers on layer_features stay.
    op.drop_column("layer_features", "feature_type")
