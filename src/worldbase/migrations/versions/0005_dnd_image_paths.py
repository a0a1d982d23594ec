"""dnd: index image_assets.storage_path_full (stored paths are served as URLs)

`GET /dnd/images/{full|thumbnails}/{name}` finds the image's row by its full path (both
files share the name) so that only live images are served.

Revision ID: 0005_dnd_image_paths
Revises: 0002_dnd
Create Date: 2026-12-06 18:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_dnd_image_paths"
down_revision: str | None = "0002_dnd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_image_assets_storage_path_full", "image_assets", ["storage_path_full"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_image_assets_storage_path_full", table_name="image_assets")
