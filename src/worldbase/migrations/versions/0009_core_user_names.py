"""core: users.username, first_name, last_name (an identity provider's profile, kept as given)

Revision ID: 0009_core_user_names
Revises: 0001_core (core changes branch from the core revision, as the apps do)
Create Date: 2026-12-07 02:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_core_user_names"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("username", "first_name", "last_name")


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("users", sa.Column(column, sa.String(255), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN on both (SQLite >= 3.35); none of them is indexed.
    for column in reversed(_COLUMNS):
        op.drop_column("users", column)
