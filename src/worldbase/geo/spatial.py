"""Spatial column type and queries that give the same answers on PostGIS and SQLite."""

from __future__ import annotations

from typing import Any


def register_sqlite_functions(connection: Any) -> None:
    """Register the SQL functions the SQLite spatial index and predicates need."""
