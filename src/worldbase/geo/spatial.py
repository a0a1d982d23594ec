"""Spatial column type and queries that give the same answers on PostGIS and SQLite.

PostgreSQL: `geometry(<type>, 4326)`, indexed by a GiST index declared with
`spatial_index(...)`. SQLite: WKB in a BLOB, and an R*Tree virtual table
`rtree_<table>_<column>(id, minx, maxx, miny, maxy)` keyed by the row's `rowid`, kept in
sync by triggers that call the Python SQL functions `register_sqlite_functions` installs
on every connection (so only connections made by `core.db` may write those tables).

`bbox_filter`, `intersects` and `within_distance` return boolean expressions for
`select(...).where(...)`: on PostGIS index operators plus exact checks, on SQLite an
R*Tree candidate filter (float32 boxes, rounded outward: never misses) plus an exact
shapely check, so the exact predicate always decides.

Migrations: `add_spatial_index(op, table, column)` after `op.create_table` (GiST on
PostgreSQL, R*Tree + triggers on SQLite) and after any SQLite batch operation on that
table (it rebuilds; batch mode recreates the table). VACUUM may renumber the rowids of
tables without an INTEGER PRIMARY KEY: run `create_sqlite_rtree` again after one.
"""

from __future__ import annotations

from typing import Any

import geoalchemy2
import shapely
from shapely.geometry import box as shapely_box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Boolean, Float, Index, LargeBinary, Table, and_, bindparam, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import coercions, roles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnClause, ColumnElement
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

from worldbase.geo.geodesic import geodesic_region
from worldbase.geo.rtree import (
    create_sqlite_rtree,
    drop_sqlite_rtree,
    quote,
    register_sqlite_functions,
    rtree_name,
    sqlite_rtree_ddl,
    sqlite_rtree_drop_ddl,
)

__all__ = [
    "SRID",
    "Geometry",
    "add_spatial_index",
    "bbox_filter",
    "create_sqlite_rtree",
    "drop_spatial_index",
    "drop_sqlite_rtree",
    "intersects",
    "postgis_bbox_sql",
    "register_sqlite_functions",
    "rtree_name",
    "skip_index_on",
    "spatial_index",
    "within_distance",
]

SRID = 4326

# --- The column type -------------------------------------------------------------------------


class Geometry(TypeDecorator[BaseGeometry]):
    """A shapely geometry in EPSG:4326: PostGIS geometry on PostgreSQL, WKB on SQLite."""

    impl = LargeBinary
    cache_ok = True
    # Read by GeoAlchemy2's DDL events on PostgreSQL: we declare the GiST index ourselves.
    spatial_index = False

    def __init__(self, geometry_type: str = "GEOMETRY"):
        super().__init__()
        self.geometry_type = geometry_type.upper()

    def __repr__(self) -> str:
        return f"Geometry(geometry_type={self.geometry_type!r})"

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect is not None and dialect.name == "postgresql":
            # spatial_index=False: the GiST index is declared explicitly so Alembic sees it.
            gis = geoalchemy2.Geometry(self.geometry_type, srid=SRID, spatial_index=False)
            return dialect.type_descriptor(gis)
        return LargeBinary() if dialect is None else dialect.type_descriptor(LargeBinary())

    def bind_expression(self, bindvalue: BindParameter[Any]) -> ColumnElement[Any]:
        return _WkbToGeometry(bindvalue)

    def column_expression(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return _GeometryToWkb(column)

    def bind_processor(self, dialect: Dialect) -> Any:
        def process(value: Any) -> bytes | None:
            if value is None:
                return None
            if not isinstance(value, BaseGeometry):
                raise TypeError(f"Geometry columns take shapely geometries, not {type(value)}")
            return bytes(shapely.to_wkb(shapely.force_2d(value)))

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        def process(value: Any) -> BaseGeometry | None:
            return None if value is None else shapely.from_wkb(bytes(value))

        return process


class _WkbToGeometry(ColumnElement[Any]):
    inherit_cache = True

    def __init__(self, value: ColumnElement[Any]):
        self.value = value
        self.type = LargeBinary()

    _traverse_internals = [("value", InternalTraversal.dp_clauseelement)]


class _GeometryToWkb(ColumnElement[Any]):
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]):
        self.column = column
        self.type = column.type

    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]


@compiles(_WkbToGeometry)
def _wkb_to_geometry(element: _WkbToGeometry, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.value, **kw)
    if compiler.dialect.name == "postgresql":
        return f"ST_GeomFromWKB({value}, {SRID})"
    return value


@compiles(_GeometryToWkb)
def _geometry_to_wkb(element: _GeometryToWkb, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    if compiler.dialect.name == "postgresql":
        return f"ST_AsBinary({column})"
    return column


def spatial_index(table_name: str, column_name: str, *, leading: str | None = None) -> Index:
    """The GiST index of a geometry column (PostgreSQL only; SQLite uses the R*Tree).

    Put it in the table's arguments (`__table_args__`). Alembic ignores the dialect
    condition: its `include_object` should skip indexes for which `skip_index_on(obj,
    dialect_name)` is true. `leading`: a column that every spatial query of the table also
    filters by equality (a layer id); the index is then GiST over (leading, geometry)
    through the btree_gist extension, so a query of one layer searches that layer's
    entries only, not every layer's that overlap the box.
    """
    columns = [column_name] if leading is None else [leading, column_name]
    name = spatial_index_name(table_name, column_name, leading)
    index = Index(name, *columns, postgresql_using="gist")
    return index.ddl_if(dialect="postgresql")


def spatial_index_name(table_name: str, column_name: str, leading: str | None = None) -> str:
    if leading is None:
        return f"ix_{table_name}_{column_name}"
    return f"ix_{table_name}_{leading}_{column_name}"


def skip_index_on(index: Any, dialect_name: str) -> bool:
    """True when `index` is declared for another dialect (for Alembic's include_object)."""
    condition = getattr(index, "_ddl_if", None)
    wanted = getattr(condition, "dialect", None)
    if wanted is None:
        return False
    return dialect_name not in ((wanted,) if isinstance(wanted, str) else tuple(wanted))


def add_spatial_index(op: Any, table: str, column: str, *, leading: str | None = None) -> None:
    """Migration step: GiST index on PostgreSQL, R*Tree + triggers on SQLite (which has no
    use for `leading`: its R*Tree answers the box, the rowids are then checked)."""
    if op.get_context().dialect.name == "postgresql":
        columns = [column] if leading is None else [leading, column]
        if leading is not None:
            op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")  # trusted: no superuser
        name = spatial_index_name(table, column, leading)
        op.create_index(name, table, columns, postgresql_using="gist")
    else:
        create_sqlite_rtree(op, table, column)


def drop_spatial_index(op: Any, table: str, column: str, *, leading: str | None = None) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.drop_index(spatial_index_name(table, column, leading), table_name=table)
    else:
        drop_sqlite_rtree(op, table, column)


def _geometry_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if isinstance(c.type, Geometry)]


@event.listens_for(Table, "after_create")
def _after_create(table: Table, bind: Any, **kw: Any) -> None:
    # Alembic's batch mode creates `_alembic_tmp_<name>` and renames it: the migration
    # rebuilds the R*Tree afterwards with `add_spatial_index` (see the module docstring).
    if bind is None or bind.dialect.name != "sqlite" or table.name.startswith("_alembic_tmp_"):
        return
    for column in _geometry_columns(table):
        for statement in sqlite_rtree_ddl(table.name, column):
            bind.exec_driver_sql(statement)


@event.listens_for(Table, "before_drop")
def _before_drop(table: Table, bind: Any, **kw: Any) -> None:
    if bind is None or bind.dialect.name != "sqlite":
        return
    for column in _geometry_columns(table):
        for statement in sqlite_rtree_drop_ddl(table.name, column):
            bind.exec_driver_sql(statement)


# --- Queries ---------------------------------------------------------------------------------


def _column(column: Any) -> ColumnElement[Any]:
    return coercions.expect(roles.ExpressionElementRole, column)


def _base_table_name(selectable: FromClause) -> str:
    while not isinstance(selectable, Table):
        inner = getattr(selectable, "element", None)
        if inner is None:
            raise TypeError("spatial predicates need a column of a table (or of its alias)")
        selectable = inner
    return selectable.name


def _float(value: float) -> BindParameter[float]:
    return bindparam(None, float(value), type_=Float(), unique=True)


class _SpatialPredicate(ColumnElement[bool]):
    """Base of the predicates: a geometry column, an optional WKB, bounding boxes."""

    inherit_cache = True
    type = Boolean()
    # A predicate, not a boolean value: no `= 1` on SQLite, where that would hide the
    # R*Tree's `rowid IN (...)` from the planner (a full scan with a Python call per row).
    _is_implicitly_boolean = True

    def __init__(
        self,
        column: Any,
        boxes: list[tuple[float, float, float, float]],
        wkb: bytes | None = None,
    ):
        self.column = _column(column)
        self.boxes = [_float(v) for b in boxes for v in b]
        self.wkb = None if wkb is None else bindparam(None, wkb, type_=LargeBinary(), unique=True)

    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("boxes", InternalTraversal.dp_clauseelement_list),
        ("wkb", InternalTraversal.dp_clauseelement),
    ]

    def _negate(self) -> ColumnElement[Any]:
        # NULL geometries match neither P nor NOT P (as on PostGIS); SQLite's candidate
        # filter alone would make NOT P true for them.
        return and_(self.column.is_not(None), super()._negate())


class _BBoxPredicate(_SpatialPredicate):
    inherit_cache = True


class _IntersectsPredicate(_SpatialPredicate):
    inherit_cache = True


def _sqlite_candidates(element: _SpatialPredicate, compiler: SQLCompiler, **kw: Any) -> str:
    column = element.column
    table = getattr(column, "table", None)
    if table is None:
        raise TypeError("spatial predicates need a column of a table (or of its alias)")
    rtree = quote(rtree_name(_base_table_name(table), str(getattr(column, "name", ""))))
    rowid = compiler.process(ColumnClause("rowid", _selectable=table), **kw)
    selects = []
    values = [compiler.process(b, **kw) for b in element.boxes]
    for i in range(0, len(values), 4):
        minx, miny, maxx, maxy = values[i : i + 4]
        selects.append(
            f"SELECT id FROM {rtree} WHERE maxx >= {minx} AND minx <= {maxx} "  # noqa: S608
            f"AND maxy >= {miny} AND miny <= {maxy}"
        )
    return f"{rowid} IN ({' UNION ALL '.join(selects)})"


def postgis_bbox_sql(column: str, minx: str, miny: str, maxx: str, maxy: str) -> str:
    """`bbox_filter` on PostGIS as SQL text (the box: parameter markers or literals), for
    statements run raw. `&&` compares float4 boxes rounded outward (the GiST index); the
    ST_XMin... tests that follow are exact doubles."""
    return (
        f"{column} && ST_MakeEnvelope({minx}, {miny}, {maxx}, {maxy}, {SRID}) "
        f"AND ST_XMax({column}) >= {minx} AND ST_XMin({column}) <= {maxx} "
        f"AND ST_YMax({column}) >= {miny} AND ST_YMin({column}) <= {maxy}"
    )


@compiles(_BBoxPredicate)
def _compile_bbox(element: _BBoxPredicate, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    minx, miny, maxx, maxy = (compiler.process(b, **kw) for b in element.boxes)
    if compiler.dialect.name == "postgresql":
        return f"({postgis_bbox_sql(column, minx, miny, maxx, maxy)})"
    candidates = _sqlite_candidates(element, compiler, **kw)
    exact = f"wb_bbox_intersects({column}, {minx}, {miny}, {maxx}, {maxy})"
    return f"({candidates} AND {exact} = 1)"


@compiles(_IntersectsPredicate)
def _compile_intersects(element: _IntersectsPredicate, compiler: SQLCompiler, **kw: Any) -> str:
    assert element.wkb is not None
    column = compiler.process(element.column, **kw)
    wkb = compiler.process(element.wkb, **kw)
    if compiler.dialect.name == "postgresql":
        # Not ST_Intersects: its point-in-polygon shortcut counts points within ~1e-12 degrees
        # of an edge as touching it; ST_Disjoint goes to GEOS, exact like shapely.
        query = f"ST_GeomFromWKB({wkb}, {SRID})"
        return f"({column} && {query} AND NOT ST_Disjoint({column}, {query}))"
    candidates = _sqlite_candidates(element, compiler, **kw)
    return f"({candidates} AND wb_intersects({column}, {wkb}) = 1)"


def bbox_filter(
    column: Any, minx: float, miny: float, maxx: float, maxy: float
) -> ColumnElement[bool]:
    """Rows whose geometry's bounding box intersects (or touches) the box."""
    return _BBoxPredicate(column, [(minx, miny, maxx, maxy)])


def _candidate_boxes(geom: BaseGeometry) -> list[tuple[float, float, float, float]]:
    # A few far-apart parts (a region split at the antimeridian) get one box each.
    parts = list(getattr(geom, "geoms", [geom]))
    whole = tuple(geom.bounds)
    if not 1 < len(parts) <= 4:
        return [whole]
    boxes = [tuple(p.bounds) for p in parts if not p.is_empty]
    if sum(shapely_box(*b).area for b in boxes) >= 0.5 * shapely_box(*whole).area:
        return [whole]
    return boxes


def intersects(column: Any, geom: BaseGeometry) -> ColumnElement[bool]:
    """Rows whose geometry intersects `geom` (lon/lat, planar, as PostGIS geometry does)."""
    if geom.is_empty:
        raise ValueError("intersects() needs a non-empty geometry")
    wkb = bytes(shapely.to_wkb(shapely.force_2d(geom)))
    return _IntersectsPredicate(column, _candidate_boxes(geom), wkb)


def within_distance(column: Any, geom: BaseGeometry, metres: float) -> ColumnElement[bool]:
    """Rows within `metres` (geodesic, WGS84) of `geom`; see `geo.geodesic` for accuracy."""
    return intersects(column, geodesic_region(geom, metres))
