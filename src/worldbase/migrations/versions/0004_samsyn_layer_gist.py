"""samsyn: the features' GiST index leads with layer_id (btree_gist)

Every feature query (bbox pages, vector tiles) names one layer. With GiST on the geometry
alone PostgreSQL combined it with the layer_id B-tree (a bitmap AND over all of the
layer's rows): a z12 tile over a 100,000-polygon layer took 8.1 ms, 5.4 ms with this
index; z14 0.66 -> 0.41 ms. SQLite keeps its R*Tree.

Revision ID: 0004_samsyn_layer_gist
Revises: 0002_samsyn
Create Date: 2026-11-23 14:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

from worldbase.geo.spatial import add_spatial_index, drop_spatial_index

revision: str = "0004_samsyn_layer_gist"
down_revision: str | None = "0002_samsyn"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        add_spatial_index(op, "layer_features", "geometry", leading="layer_id")
        drop_spatial_index(op, "layer_features", "geometry")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        add_spatial_index(op, "layer_features", "geometry")
        drop_spatial_index(op, "layer_features", "geometry", leading="layer_id")
