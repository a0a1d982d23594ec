"""samsyn: maps, layers, layer features, map layers, collaborators, invitations, comments

Revision ID: 0002_samsyn
Revises: 0001_core
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from worldbase.geo.spatial import Geometry, add_spatial_index, drop_spatial_index

revision: str = "0002_samsyn"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("samsyn",)
depends_on: str | Sequence[str] | None = None

TABLES = (
    "comments",
    "map_invitations",
    "map_collaborators",
    "map_layers",
    "layer_features",
    "maps",
    "layers",
)


def upgrade() -> None:
    op.create_table(
        "maps",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("center_lat", sa.Float(), nullable=False),
        sa.Column("center_lng", sa.Float(), nullable=False),
        sa.Column("zoom", sa.Float(), nullable=False),
        sa.Column("basemap", sa.String(length=2048), nullable=True),
        sa.Column(
            "permission_level",
            sa.Enum(
                "private",
                "collaborators",
                "public",
                name="map_permission_level",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
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
            ["created_by"], ["users.id"], name=op.f("fk_maps_created_by_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maps")),
    )
    op.create_index("idx_maps_created_by", "maps", ["created_by"], unique=False)
    op.create_index("idx_maps_permission", "maps", ["permission_level"], unique=False)
    op.create_table(
        "layers",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "source_type",
            sa.Enum(
                "wms",
                "geotiff",
                "vector",
                name="layer_source_type",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column(
            "editable",
            sa.Enum(
                "creator-only",
                "everyone",
                name="layer_editable",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("is_global", sa.Boolean(), nullable=False),
        sa.Column(
            "source_config",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "style_config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "legend_config",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
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
            ["created_by"],
            ["users.id"],
            name=op.f("fk_layers_created_by_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_layers")),
    )
    op.create_index("idx_layers_category", "layers", ["category"], unique=False)
    op.create_index("idx_layers_created_by", "layers", ["created_by"], unique=False)
    op.create_index("idx_layers_is_global", "layers", ["is_global"], unique=False)
    op.create_index("idx_layers_source_type", "layers", ["source_type"], unique=False)
    op.create_table(
        "layer_features",
        sa.Column("layer_id", sa.Uuid(), nullable=False),
        sa.Column("geometry", Geometry(), nullable=False),
        sa.Column(
            "properties", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("display_order", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
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
            ["layer_id"],
            ["layers.id"],
            name=op.f("fk_layer_features_layer_id_layers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_layer_features")),
    )
    add_spatial_index(op, "layer_features", "geometry")
    op.create_index(
        "idx_features_layer_id", "layer_features", ["layer_id", "display_order"], unique=False
    )
    op.create_table(
        "map_layers",
        sa.Column("map_id", sa.Uuid(), nullable=False),
        sa.Column("layer_id", sa.Uuid(), nullable=False),
        sa.Column("display_order", sa.Integer(), nullable=False),
        sa.Column("is_visible", sa.Boolean(), nullable=False),
        sa.Column("opacity", sa.Float(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_id"],
            ["layers.id"],
            name=op.f("fk_map_layers_layer_id_layers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["map_id"], ["maps.id"], name=op.f("fk_map_layers_map_id_maps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_map_layers")),
        sa.UniqueConstraint("map_id", "layer_id", name="idx_map_layers_unique"),
    )
    op.create_index("idx_map_layers_layer", "map_layers", ["layer_id"], unique=False)
    op.create_index("idx_map_layers_map", "map_layers", ["map_id"], unique=False)
    op.create_table(
        "map_collaborators",
        sa.Column("map_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "permission",
            sa.Enum(
                "view",
                "edit",
                name="collaborator_permission",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["map_id"],
            ["maps.id"],
            name=op.f("fk_map_collaborators_map_id_maps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_map_collaborators_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_map_collaborators")),
        sa.UniqueConstraint("map_id", "user_id", name="idx_collaborators_unique"),
    )
    op.create_index("idx_collaborators_map", "map_collaborators", ["map_id"], unique=False)
    op.create_index("idx_collaborators_user", "map_collaborators", ["user_id"], unique=False)
    op.create_table(
        "map_invitations",
        sa.Column("map_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "permission",
            sa.Enum(
                "view",
                "edit",
                name="collaborator_permission",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("invited_by", sa.Uuid(), nullable=True),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["users.id"],
            name=op.f("fk_map_invitations_invited_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["map_id"], ["maps.id"], name=op.f("fk_map_invitations_map_id_maps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_map_invitations")),
        sa.UniqueConstraint("map_id", "email", name="idx_map_invitations_unique"),
    )
    op.create_index("idx_map_invitations_email", "map_invitations", ["email"], unique=False)
    op.create_table(
        "comments",
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("map_id", sa.Uuid(), nullable=True),
        sa.Column("layer_id", sa.Uuid(), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("is_resolved", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
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
        sa.CheckConstraint(
            "(map_id IS NULL) <> (layer_id IS NULL)", name=op.f("ck_comments_one_target")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_comments_author_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["layer_id"],
            ["layers.id"],
            name=op.f("fk_comments_layer_id_layers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["map_id"], ["maps.id"], name=op.f("fk_comments_map_id_maps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["comments.id"],
            name=op.f("fk_comments_parent_id_comments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    op.create_index("idx_comments_author", "comments", ["author_id"], unique=False)
    op.create_index("idx_comments_layer", "comments", ["layer_id"], unique=False)
    op.create_index("idx_comments_map", "comments", ["map_id"], unique=False)
    op.create_index("idx_comments_parent", "comments", ["parent_id"], unique=False)


def downgrade() -> None:
    drop_spatial_index(op, "layer_features", "geometry")
    # Dropping a table drops its indexes and constraints with it.
    for table in TABLES:
        op.drop_table(table)
