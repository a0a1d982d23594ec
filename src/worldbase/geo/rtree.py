"""SQLite's half of the spatial index: the SQL functions and the R*Tree with its triggers.

`register_sqlite_functions` runs on every SQLite connection SQLAlchemy opens (a pool
listener, so `core.db` needs no geo import); the triggers call those functions, so other
SQLite clients cannot write tables that carry an R*Tree.
The R*Tree stores float32 boxes; they are rounded outward here, so candidate filters
never miss and the exact `wb_intersects` / `wb_bbox_intersects` checks decide.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import Pool

# --- SQLite: SQL functions -------------------------------------------------------------------


def _float32(value: float, direction: float) -> float:
    """`value` as a float32, rounded towards `direction` (-inf: down, +inf: up)."""
    rounded = np.float32(value)
    if (float(rounded) - value) * direction < 0:
        rounded = np.nextafter(rounded, np.float32(direction))
    return float(rounded)


@lru_cache(maxsize=1024)
def _bounds(wkb: bytes) -> tuple[float, float, float, float] | None:
    """The R*Tree box: float32, rounded outward here because SQLite's own rounding loses
    values that underflow float32 (1e-62 is stored as 0)."""
    geom = shapely.from_wkb(wkb)
    if geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    down, up = -np.inf, np.inf
    return _float32(minx, down), _float32(miny, down), _float32(maxx, up), _float32(maxy, up)


@lru_cache(maxsize=1024)
def _exact_bounds(wkb: bytes) -> tuple[float, float, float, float] | None:
    geom = shapely.from_wkb(wkb)
    return None if geom.is_empty else tuple(geom.bounds)


class _QueryGeometries(threading.local):
    """Parsed, prepared query geometries per thread (GEOS prepared geometries are not shared)."""

    def __init__(self) -> None:
        self.cache: OrderedDict[bytes, BaseGeometry] = OrderedDict()

    def get(self, wkb: bytes) -> BaseGeometry:
        geom = self.cache.get(wkb)
        if geom is None:
            geom = shapely.from_wkb(wkb)
            shapely.prepare(geom)
            self.cache[wkb] = geom
            if len(self.cache) > 16:
                self.cache.popitem(last=False)
        return geom


_query_geometries = _QueryGeometries()


def _bound(index: int) -> Any:
    def function(wkb: bytes | None) -> float | None:
        bounds = None if wkb is None else _bounds(bytes(wkb))
        return None if bounds is None else bounds[index]

    return function


def _intersects(wkb: bytes | None, query: bytes | None) -> int | None:
    if wkb is None or query is None:
        return None
    prepared = _query_geometries.get(bytes(query))
    return int(prepared.intersects(shapely.from_wkb(bytes(wkb))))


def _bbox_intersects(
    wkb: bytes | None, minx: float, miny: float, maxx: float, maxy: float
) -> int | None:
    if wkb is None:
        return None
    bounds = _exact_bounds(bytes(wkb))
    if bounds is None:
        return 0
    bminx, bminy, bmaxx, bmaxy = bounds
    return int(bmaxx >= minx and bminx <= maxx and bmaxy >= miny and bminy <= maxy)


def register_sqlite_functions(connection: Any) -> None:
    """Register the SQL functions the SQLite spatial index and predicates need."""
    for name, index in (("wb_minx", 0), ("wb_miny", 1), ("wb_maxx", 2), ("wb_maxy", 3)):
        connection.create_function(name, 1, _bound(index), deterministic=True)
    connection.create_function("wb_intersects", 2, _intersects, deterministic=True)
    connection.create_function("wb_bbox_intersects", 5, _bbox_intersects, deterministic=True)


@event.listens_for(Pool, "connect")
def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # aiosqlite wraps the sqlite3 connection; the functions go on the real one.
    raw = getattr(dbapi_connection, "_connection", None)
    raw = getattr(raw, "_conn", raw) or dbapi_connection
    if isinstance(raw, sqlite3.Connection):
        register_sqlite_functions(raw)


# --- SQLite: the R*Tree and its triggers -----------------------------------------------------


def rtree_name(table: str, column: str) -> str:
    return f"rtree_{table}_{column}"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rtree_insert(rtree: str, row: str, column: str) -> str:
    # One bounds computation per row (cached), NULL/empty geometries are not indexed.
    return (
        f"INSERT OR REPLACE INTO {rtree} (id, minx, maxx, miny, maxy) "  # noqa: S608
        f"SELECT {row}.rowid, b.minx, b.maxx, b.miny, b.maxy FROM (SELECT "
        f"wb_minx({row}.{column}) AS minx, wb_maxx({row}.{column}) AS maxx, "
        f"wb_miny({row}.{column}) AS miny, wb_maxy({row}.{column}) AS maxy) AS b "
        "WHERE b.minx IS NOT NULL"
    )


def sqlite_rtree_ddl(table: str, column: str) -> list[str]:
    """Statements that (re)build the R*Tree of `table.column`, its content and triggers."""
    # S608 is silenced below: identifiers come from the schema, quoted by quote(); no values.
    name = rtree_name(table, column)
    r, t, c = quote(name), quote(table), quote(column)
    triggers = [quote(f"{name}_{kind}") for kind in ("insert", "update", "delete")]
    return [
        *(f"DROP TRIGGER IF EXISTS {trigger}" for trigger in triggers),
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {r} USING rtree(id, minx, maxx, miny, maxy)",
        f"DELETE FROM {r}",  # noqa: S608
        f"INSERT INTO {r} (id, minx, maxx, miny, maxy) "  # noqa: S608
        f"SELECT rid, minx, maxx, miny, maxy FROM (SELECT rowid AS rid, wb_minx({c}) AS minx, "
        f"wb_maxx({c}) AS maxx, wb_miny({c}) AS miny, wb_maxy({c}) AS maxy FROM {t} "
        f"WHERE {c} IS NOT NULL) WHERE minx IS NOT NULL",
        f"CREATE TRIGGER {triggers[0]} AFTER INSERT ON {t} BEGIN "  # noqa: S608
        f"DELETE FROM {r} WHERE id = new.rowid; {_rtree_insert(r, 'new', c)}; END",
        f"CREATE TRIGGER {triggers[1]} AFTER UPDATE ON {t} "  # noqa: S608
        f"WHEN old.rowid IS NOT new.rowid OR old.{c} IS NOT new.{c} BEGIN "
        f"DELETE FROM {r} WHERE id = old.rowid; {_rtree_insert(r, 'new', c)}; END",
        f"CREATE TRIGGER {triggers[2]} AFTER DELETE ON {t} BEGIN "  # noqa: S608
        f"DELETE FROM {r} WHERE id = old.rowid; END",
    ]


def sqlite_rtree_drop_ddl(table: str, column: str) -> list[str]:
    name = rtree_name(table, column)
    triggers = [
        f"DROP TRIGGER IF EXISTS {quote(f'{name}_{k}')}" for k in ("insert", "update", "delete")
    ]
    return [*triggers, f"DROP TABLE IF EXISTS {quote(name)}"]


def _run(op_or_connection: Any, statements: list[str], *, sqlite: bool) -> None:
    """Run on SQLite only; `op_or_connection` is Alembic's `op` or a sync Connection."""
    if hasattr(op_or_connection, "get_context"):
        if (op_or_connection.get_context().dialect.name == "sqlite") is sqlite:
            for statement in statements:
                op_or_connection.execute(statement)
        return
    connection: Connection = op_or_connection
    if (connection.dialect.name == "sqlite") is sqlite:
        for statement in statements:
            connection.exec_driver_sql(statement)


def create_sqlite_rtree(op_or_connection: Any, table: str, column: str) -> None:
    """Create (or rebuild) the R*Tree of `table.column` on SQLite; nothing elsewhere."""
    _run(op_or_connection, sqlite_rtree_ddl(table, column), sqlite=True)


def drop_sqlite_rtree(op_or_connection: Any, table: str, column: str) -> None:
    _run(op_or_connection, sqlite_rtree_drop_ddl(table, column), sqlite=True)
