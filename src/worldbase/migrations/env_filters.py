"""What Alembic compares: everything in the models except objects geo.spatial manages itself."""

from __future__ import annotations

from typing import Any

# SQLite's R*Tree index tables (and their shadow tables), and PostGIS's own catalog tables.
MANAGED_ELSEWHERE = ("rtree_", "spatial_ref_sys", "geometry_columns", "geography_columns")


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    return not (type_ == "table" and name is not None and name.startswith(MANAGED_ELSEWHERE))
