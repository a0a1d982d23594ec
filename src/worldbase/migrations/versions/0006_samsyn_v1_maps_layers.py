"""samsyn: what SamSyn's `/api/v1` maps and layers carry besides ours

maps.edit_permission (private | collaborators | public; existing maps keep what they had:
editor collaborators edit, `collaborators`), maps.map_metadata, layers.visibility
(private | public) and layers.creation_source (layer_creator | admin_panel | system).

Revision ID: 0006_samsyn_v1_maps_layers
Revises: 0004_samsyn_layer_gist
Create Date: 2026-12-07 01:00:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_samsyn_v1_maps_layers"
down_revision: str | None = "0004_samsyn_layer_gist"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=20)


COLUMNS: dict[str, list[sa.Column[Any]]] = {
    "maps": [
        sa.Column(
            "edit_permission",
            _enum("map_edit_permission", "private", "collaborators", "public"),
            server_default="collaborators",
            nullable=False,
        ),
        sa.Column(
            "map_metadata",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
    ],
    "layers": [
        sa.Column(
            "visibility",
            _enum("layer_visibility", "private", "public"),
            server_default="private",
            nullable=False,
        ),
        sa.Column(
            "creation_source",
            _enum("layer_creation_source", "layer_creator", "admin_panel", "system"),
            server_default="system",
            nullable=False,
        ),
    ],
}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.add_column(column)
    op.create_index("idx_layers_visibility", "layers", ["visibility"], unique=False)


def downgrade() -> None:
    op.drop_index("idx_layers_visibility", table_name="layers")
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in reversed(columns):
                if isinstance(column.type, sa.Enum):  # its CHECK names the column
                    batch.drop_constraint(op.f(f"ck_{table}_{column.type.name}"), type_="check")
                batch.drop_column(column.name)
