"""habitats: habitats, species and species occurrences

Revision ID: 0002_habitats
Revises: 0001_core
Create Date: 2026-11-23 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from worldbase.geo.spatial import Geometry, add_spatial_index, drop_spatial_index

revision: str = "0002_habitats"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("habitats",)
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
STRING_LIST = sa.JSON().with_variant(postgresql.ARRAY(sa.String(length=50)), "postgresql")


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
        "habitats",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("iucn_code", sa.String(length=50), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("ecosystem_type", sa.String(length=100), nullable=True),
        sa.Column("color_hex", sa.String(length=7), nullable=False),
        sa.Column("raster_value", sa.Integer(), nullable=True),
        sa.Column("geometry", Geometry(geometry_type="GEOMETRY"), nullable=True),
        sa.Column("tile_url", sa.String(length=500), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_habitats")),
    )
    op.create_index("idx_habitats_iucn_code", "habitats", ["iucn_code"], unique=True)
    op.create_index("idx_habitats_raster_value", "habitats", ["raster_value"])
    add_spatial_index(op, "habitats", "geometry")

    op.create_table(
        "species",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("scientific_name", sa.String(length=255), nullable=True),
        sa.Column("habitat_types", STRING_LIST, nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_species")),
    )
    op.create_index("idx_species_name", "species", ["name"], unique=True)

    op.create_table(
        "species_occurrences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("species_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_range", sa.Boolean(), nullable=False),
        sa.Column("geometry", Geometry(geometry_type="GEOMETRY"), nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["species_id"],
            ["species.id"],
            name=op.f("fk_species_occurrences_species_id_species"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_species_occurrences")),
    )
    op.create_index(
        "idx_species_occurrences_species", "species_occurrences", ["species_id", "position"]
    )
    add_spatial_index(op, "species_occurrences", "geometry")


def downgrade() -> None:
    drop_spatial_index(op, "species_occurrences", "geometry")
    op.drop_index("idx_species_occurrences_species", table_name="species_occurrences")
    op.drop_table("species_occurrences")
    op.drop_index("idx_species_name", table_name="species")
    op.drop_table("species")
    drop_spatial_index(op, "habitats", "geometry")
    op.drop_index("idx_habitats_raster_value", table_name="habitats")
    op.drop_index("idx_habitats_iucn_code", table_name="habitats")
    op.drop_table("habitats")
