"""What Alembic compares: everything in the models except objects managed elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worldbase.geo.spatial import skip_index_on

# SQLite's R*Tree index tables (and their shadow tables), and PostGIS's own catalog tables.
MANAGED_ELSEWHERE = ("rtree_", "spatial_ref_sys", "geometry_columns", "geography_columns")

IncludeObject = Callable[[Any, str | None, str, bool, Any], bool]


def include_object_for(dialect_name: str) -> IncludeObject:
    """Alembic's include_object for one dialect: indexes declared for another dialect (the
    PostGIS GiST index; SQLite has its R*Tree instead) are not expected there."""

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table" and name is not None and name.startswith(MANAGED_ELSEWHERE):
            return False
        return not (type_ == "index" and skip_index_on(compare_to or obj, dialect_name))

    return include_object
