"""osm: index ways by their node refs (a moved node reshapes its ways); drop the unused
osm_id index that databases migrated before it was removed from 0002_osm still have

Revision ID: 0003_osm_way_refs
Revises: 0002_osm
Create Date: 2026-11-23 08:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_osm_way_refs"
down_revision: str | None = "0002_osm"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_osm_objects_osm_id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_osm_objects_way_refs ON osm_objects "
            "USING gin (refs jsonb_path_ops) WHERE type = 'way'"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_osm_objects_way_refs")
