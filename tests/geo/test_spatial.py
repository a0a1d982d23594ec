"""The Geometry column, its index (R*Tree in sync / GiST) and the predicates, both backends."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import shapely
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, aliased, mapped_column
from sqlalchemy.types import Uuid

from tests.geo.conftest import Backend, geometry_table, unique
from worldbase.core.errors import BadInput
from worldbase.geo.spatial import (
    Geometry,
    add_spatial_index,
    bbox_filter,
    create_sqlite_rtree,
    drop_spatial_index,
    intersects,
    rtree_name,
    skip_index_on,
    within_distance,
)


def rtree_rows(backend: Backend, table: str) -> dict[int, tuple[float, ...]]:
    async def go() -> dict[int, tuple[float, ...]]:
        async with backend.engine.connect() as conn:
            rows = await conn.execute(text(f'SELECT * FROM "{rtree_name(table, "geom")}"'))
            return {row[0]: tuple(row[1:]) for row in rows}

    return backend.run(go())


def ids(backend: Backend, statement: Any) -> set[Any]:
    async def go() -> set[Any]:
        async with backend.engine.connect() as conn:
            return set((await conn.execute(statement)).scalars())

    return backend.run(go())


def execute(backend: Backend, *statements: Any) -> None:
    """Run statements in one transaction; a `(statement, rows)` tuple is an executemany."""

    async def go() -> None:
        async with backend.engine.begin() as conn:
            for statement in statements:
                if isinstance(statement, tuple):
                    await conn.execute(*statement)
                else:
                    await conn.execute(statement)

    backend.run(go())


@pytest.fixture
def table(backend: Backend) -> Any:
    metadata = MetaData()
    created = geometry_table(metadata, unique("geo_t"))
    backend.create(metadata)
    yield created
    backend.drop(metadata)
    if backend.name == "sqlite":  # dropping the table drops its R*Tree too
        with pytest.raises(Exception, match="no such table"):
            rtree_rows(backend, created.name)


def contains_box(stored: tuple[float, ...], geom: Any) -> bool:
    minx, maxx, miny, maxy = stored
    gminx, gminy, gmaxx, gmaxy = geom.bounds
    return minx <= gminx and maxx >= gmaxx and miny <= gminy and maxy >= gmaxy


def test_round_trip_of_every_geometry_type(backend: Backend, table: Table) -> None:
    geoms = [
        Point(1.5, 2.25),
        LineString([(0, 0), (1, 1), (2, 0)]),
        box(0, 0, 1, 1),
        MultiPolygon([box(0, 0, 1, 1), box(2, 2, 3, 3)]),
        shapely.from_wkt("GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))"),
    ]
    execute(backend, (insert(table), [{"id": i, "geom": g} for i, g in enumerate(geoms)]))

    async def load() -> list[Any]:
        async with backend.engine.connect() as conn:
            return list((await conn.execute(select(table.c.geom).order_by(table.c.id))).scalars())

    loaded = backend.run(load())
    assert [g.wkt for g in loaded] == [g.wkt for g in geoms]


def test_rtree_follows_insert_update_delete(sqlite_backend: Backend) -> None:
    backend = sqlite_backend
    metadata = MetaData()
    t = geometry_table(metadata, unique("geo_sync"))
    backend.create(metadata)
    try:
        line = LineString([(0.1, 0.2), (10.3, 20.7)])
        execute(
            backend,
            insert(t).values(id=1, geom=Point(0.1, 0.3)),
            insert(t).values(id=2, geom=line),
            insert(t).values(id=3, geom=None),
        )
        rows = rtree_rows(backend, t.name)
        assert set(rows) == {1, 2}  # NULL geometries are not indexed
        assert contains_box(rows[1], Point(0.1, 0.3)) and contains_box(rows[2], line)
        # float32 boxes, rounded outward: never smaller than the geometry
        assert rows[2][0] <= 0.1 and rows[2][1] >= 10.3

        moved = Point(50, 60)
        execute(backend, update(t).where(t.c.id == 1).values(geom=moved))
        assert rtree_rows(backend, t.name)[1] == (50.0, 50.0, 60.0, 60.0)
        execute(backend, update(t).where(t.c.id == 3).values(geom=Point(-5, -6)))
        assert rtree_rows(backend, t.name)[3] == (-5.0, -5.0, -6.0, -6.0)
        execute(backend, update(t).where(t.c.id == 2).values(geom=None))
        assert set(rtree_rows(backend, t.name)) == {1, 3}
        execute(backend, update(t).where(t.c.id == 1).values(label=7))  # geometry unchanged
        assert rtree_rows(backend, t.name)[1] == (50.0, 50.0, 60.0, 60.0)
        execute(backend, update(t).where(t.c.id == 1).values(id=10))  # the rowid moves
        assert set(rtree_rows(backend, t.name)) == {10, 3}
        execute(backend, delete(t).where(t.c.id == 3))
        assert set(rtree_rows(backend, t.name)) == {10}
        execute(backend, delete(t))
        assert rtree_rows(backend, t.name) == {}
    finally:
        backend.drop(metadata)


class _Base(DeclarativeBase):
    pass


class _Place(_Base):
    """A UUID primary key: the R*Tree is keyed by SQLite's implicit rowid."""

    __tablename__ = unique("geo_places")
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(50))
    geom: Mapped[Any] = mapped_column(Geometry("POINT"))


def test_orm_uuid_keys_aliases_and_cached_statements(backend: Backend) -> None:
    backend.create(_Base.metadata)
    try:
        a, b = uuid.uuid4(), uuid.uuid4()
        execute(
            backend,
            insert(_Place).values(id=a, name="a", geom=Point(10, 10)),
            insert(_Place).values(id=b, name="b", geom=Point(20, 20)),
        )
        if backend.name == "sqlite":
            assert len(rtree_rows(backend, _Place.__tablename__)) == 2
        # The same statement shape twice with other values: the compiled cache must not mix them.
        assert ids(backend, select(_Place.id).where(bbox_filter(_Place.geom, 9, 9, 11, 11))) == {a}
        assert ids(backend, select(_Place.id).where(bbox_filter(_Place.geom, 19, 19, 21, 21))) == {
            b
        }
        near = select(_Place.id).where(within_distance(_Place.geom, Point(10.001, 10), 200))
        assert ids(backend, near) == {a}
        other = aliased(_Place)
        pairs = select(other.name).where(intersects(other.geom, box(15, 15, 25, 25)))
        assert ids(backend, pairs) == {"b"}
        execute(backend, delete(_Place).where(_Place.id == a))
        assert ids(
            backend, select(_Place.id).where(bbox_filter(_Place.geom, -180, -90, 180, 90))
        ) == {b}
    finally:
        backend.drop(_Base.metadata)


def test_predicates_on_edges_and_nulls(backend: Backend, table: Table) -> None:
    rows = {
        1: Point(0.1, 0.1),  # not representable in float32: exactness matters on the edges
        2: LineString([(0.1, 0.1), (0.30000001, 0.7)]),
        3: box(1, 1, 2, 2),
        4: None,
        5: Polygon(
            [(5, 5), (6, 5), (6, 6), (5, 6)], [[(5.2, 5.2), (5.8, 5.2), (5.8, 5.8), (5.2, 5.8)]]
        ),
    }
    execute(backend, (insert(table), [{"id": k, "geom": v} for k, v in rows.items()]))
    q = select(table.c.id)
    # float32 underflow: SQLite alone would store 2.8e-62 as 0.0 and miss the point
    execute(backend, insert(table).values(id=6, geom=Point(7, 2.8e-62)))
    assert ids(backend, q.where(bbox_filter(table.c.geom, 7, 2.8e-62, 7, 2.8e-62))) == {6}
    assert ids(backend, q.where(intersects(table.c.geom, Point(7, 2.8e-62)))) == {6}
    assert ids(backend, q.where(bbox_filter(table.c.geom, 0.1, 0.1, 0.1, 0.1))) == {1, 2}
    assert ids(backend, q.where(bbox_filter(table.c.geom, 0.30000001, 0, 1, 1))) == {2, 3}
    assert ids(backend, q.where(bbox_filter(table.c.geom, 0.300000011, 0, 0.9, 1))) == set()
    assert ids(backend, q.where(bbox_filter(table.c.geom, 2, 2, 3, 3))) == {3}  # touching counts
    # the hole is not part of the polygon, its bbox is
    assert ids(backend, q.where(intersects(table.c.geom, Point(5.5, 5.5)))) == set()
    assert ids(backend, q.where(bbox_filter(table.c.geom, 5.5, 5.5, 5.5, 5.5))) == {5}
    assert ids(backend, q.where(intersects(table.c.geom, Point(5.1, 5.5)))) == {5}
    assert ids(backend, q.where(~intersects(table.c.geom, box(0, 0, 3, 3)))) == {5, 6}


def test_intersects_is_exact_next_to_an_edge(backend: Backend, table: Table) -> None:
    # PostGIS's ST_Intersects point-in-polygon shortcut counts this point as touching.
    triangle = Polygon([(0, 0), (0, 1), (1, -1), (0, 0)])
    execute(backend, insert(table).values(id=1, geom=triangle))
    q = select(table.c.id)
    assert ids(backend, q.where(intersects(table.c.geom, Point(0, -1.633e-41)))) == set()
    assert ids(backend, q.where(intersects(table.c.geom, Point(0, 0)))) == {1}


def test_within_distance_across_the_antimeridian(backend: Backend, table: Table) -> None:
    execute(
        backend,
        (
            insert(table),
            [
                {"id": 1, "geom": Point(-179.99, 0)},  # ~2.2 km from (179.99, 0) across 180
                {"id": 2, "geom": Point(179.95, 0)},  # ~4.5 km
                {"id": 3, "geom": Point(-179.9, 0)},  # ~12 km
                {"id": 4, "geom": Point(0, 0)},
            ],
        ),
    )
    q = select(table.c.id)
    assert ids(backend, q.where(within_distance(table.c.geom, Point(179.99, 0), 5_000))) == {1, 2}
    assert ids(backend, q.where(within_distance(table.c.geom, Point(179.99, 0), 15_000))) == {
        1,
        2,
        3,
    }


def test_within_distance_around_a_pole(backend: Backend, table: Table) -> None:
    execute(
        backend,
        (
            insert(table),
            [
                {"id": 1, "geom": Point(0, 89.95)},
                {"id": 2, "geom": Point(180, 89.95)},  # ~11 km from id 1 over the pole
                {"id": 3, "geom": Point(90, 89.9)},
                {"id": 4, "geom": Point(0, 89.7)},
            ],
        ),
    )
    q = select(table.c.id)
    assert ids(backend, q.where(within_distance(table.c.geom, Point(0, 89.95), 13_000))) == {
        1,
        2,
        3,
    }
    assert ids(backend, q.where(within_distance(table.c.geom, Point(0, 89.95), 1_000))) == {1}


def test_within_distance_rejects_bad_distances(backend: Backend, table: Table) -> None:
    for metres in (-1.0, float("nan"), 1e9):
        with pytest.raises(BadInput):
            within_distance(table.c.geom, Point(0, 0), metres)


def test_postgis_uses_the_gist_index(pg_backend: Backend) -> None:
    metadata = MetaData()
    t = geometry_table(metadata, unique("geo_gist"))
    pg_backend.create(metadata)
    try:

        async def plan() -> str:
            async with pg_backend.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                await raw.execute("SET enable_seqscan = off")
                statement = select(t.c.id).where(intersects(t.c.geom, box(0, 0, 1, 1)))
                compiled = statement.compile(dialect=conn.dialect)
                params = [compiled.params[name] for name in compiled.positiontup or []]
                rows = await raw.fetch(f"EXPLAIN {compiled}", *params)
                return "\n".join(r[0] for r in rows)

        assert f"ix_{t.name}_geom" in pg_backend.run(plan())
    finally:
        pg_backend.drop(metadata)


def test_autogenerate_sees_no_difference(backend: Backend) -> None:
    metadata = MetaData()
    t = geometry_table(metadata, unique("geo_ag"), "POINT")
    backend.create(metadata)

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return name == t.name
        return not (type_ == "index" and skip_index_on(obj, backend.name))

    def diff(conn: Connection) -> list[Any]:
        opts = {"compare_type": True, "include_object": include}
        return list(compare_metadata(MigrationContext.configure(conn, opts=opts), metadata))

    async def go() -> list[Any]:
        async with backend.engine.connect() as conn:
            return await conn.run_sync(diff)

    try:
        assert backend.run(go()) == []
    finally:
        backend.drop(metadata)


def test_migration_helpers(backend: Backend) -> None:
    name = unique("geo_mig")

    def upgrade(conn: Connection) -> None:
        op = Operations(MigrationContext.configure(conn))
        op.create_table(
            name,
            Column("id", Integer, primary_key=True),
            Column("geom", Geometry("POINT")),
        )
        conn.execute(text(f'INSERT INTO "{name}" (id) VALUES (1)'))
        add_spatial_index(op, name, "geom")
        if backend.name == "sqlite":
            add_spatial_index(op, name, "geom")  # rebuilding is idempotent

    def indexed(conn: Connection) -> bool:
        if conn.dialect.name == "sqlite":
            sql = "SELECT count(*) FROM sqlite_master WHERE name = :n"
            return bool(conn.execute(text(sql), {"n": rtree_name(name, "geom")}).scalar())
        sql = "SELECT count(*) FROM pg_indexes WHERE indexname = :n"
        return bool(conn.execute(text(sql), {"n": f"ix_{name}_geom"}).scalar())

    def downgrade(conn: Connection) -> None:
        op = Operations(MigrationContext.configure(conn))
        drop_spatial_index(op, name, "geom")
        assert not indexed(conn)
        op.drop_table(name)

    async def go() -> None:
        async with backend.engine.begin() as conn:
            await conn.run_sync(upgrade)
            assert await conn.run_sync(indexed)
            t = Table(name, MetaData(), Column("id", Integer), Column("geom", Geometry("POINT")))
            await conn.execute(update(t).values(geom=Point(3, 4)))
            found = await conn.execute(select(t.c.id).where(bbox_filter(t.c.geom, 3, 4, 3, 4)))
            assert found.scalars().all() == [1]
            await conn.run_sync(downgrade)

    backend.run(go())


def test_rtree_rebuild_indexes_existing_rows(sqlite_backend: Backend) -> None:
    name = unique("geo_rebuild")

    async def go() -> None:
        async with sqlite_backend.engine.begin() as conn:
            await conn.exec_driver_sql(f'CREATE TABLE "{name}" (id INTEGER PRIMARY KEY, geom BLOB)')
            t = Table(name, MetaData(), Column("id", Integer), Column("geom", Geometry()))
            await conn.execute(insert(t), [{"id": 1, "geom": Point(1, 2)}, {"id": 2, "geom": None}])
            await conn.run_sync(create_sqlite_rtree, name, "geom")
            rows = (
                await conn.exec_driver_sql(f'SELECT id FROM "{rtree_name(name, "geom")}"')
            ).all()
            assert rows == [(1,)]
            await conn.exec_driver_sql(f'DROP TABLE "{name}"')
            await conn.exec_driver_sql(f'DROP TABLE "{rtree_name(name, "geom")}"')

    sqlite_backend.run(go())


def test_geometry_column_takes_shapely_only(sqlite_backend: Backend) -> None:
    metadata = MetaData()
    t = geometry_table(metadata, unique("geo_type"))
    sqlite_backend.create(metadata)
    try:
        with pytest.raises(Exception, match="shapely"):
            execute(sqlite_backend, insert(t).values(id=1, geom="POINT (1 2)"))
    finally:
        sqlite_backend.drop(metadata)
