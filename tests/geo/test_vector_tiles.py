"""MVT rendering on both backends (same features, properties and geometries) and TileJSON."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box, shape
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from tests.geo.conftest import Backend, unique
from worldbase.core.db import JSONType
from worldbase.core.errors import BadInput
from worldbase.geo.spatial import Geometry, spatial_index
from worldbase.geo.tiles import lonlat_to_tile, tile_bounds_lonlat
from worldbase.geo.vector_tiles import (
    EXTENT,
    LOW_ZOOM,
    postgis_tile_sql,
    render_mvt,
    tile_args,
    tilejson,
)

Z = 12
X, Y = lonlat_to_tile(10.0, 51.0, Z)  # the tile holding (10, 51)
W, S, E, N = tile_bounds_lonlat(Z, X, Y)
DX, DY = E - W, N - S
UUIDS = [uuid.UUID(int=i + 1) for i in range(20)]


def at(fx: float, fy: float) -> tuple[float, float]:
    """A lon/lat at a fraction of the tile (0,0 = south-west corner)."""
    return W + fx * DX, S + fy * DY


def features() -> list[dict[str, Any]]:
    square = Polygon([at(0.2, 0.2), at(0.4, 0.2), at(0.4, 0.4), at(0.2, 0.4)])
    holed = Polygon(
        [at(0.5, 0.5), at(0.9, 0.5), at(0.9, 0.9), at(0.5, 0.9)],
        [[at(0.6, 0.6), at(0.6, 0.8), at(0.8, 0.8), at(0.8, 0.6)]],
    )
    rows: list[dict[str, Any]] = [
        {"geom": Point(at(0.5, 0.5)), "props": {"name": "centre", "n": 3, "f": 2.5, "k": 1.0}},
        {"geom": Point(at(0.1, 0.9)), "props": {"name": "nw", "ok": True, "nested": {"a": 1}}},
        {"geom": square, "props": {"name": "square", "none": None}},
        {"geom": holed, "props": {"name": "holed", "list": [1, 2]}},
        # Crosses the eastern edge: clipped to the buffered tile.
        {"geom": LineString([at(0.5, 0.3), at(1.5, 0.3)]), "props": {"name": "line"}},
        # Inside the 64-pixel buffer, outside the tile: kept, as ST_AsMVTGeom keeps it.
        {"geom": Point(at(1.005, 0.5)), "props": {"name": "buffer"}},
        # Far outside.
        {"geom": Point(at(3.0, 3.0)), "props": {"name": "outside"}},
        # Other group: filtered out by `where`.
        {"geom": Point(at(0.3, 0.7)), "props": {"name": "other"}, "grp": "b"},
        # Smaller than a pixel: collapses on the grid and is dropped on both backends.
        {"geom": box(*at(0.7, 0.1), *at(0.70001, 0.10001)), "props": {"name": "speck"}},
    ]
    for i, row in enumerate(rows):
        row.setdefault("grp", "a")
        row["id"] = i + 1
        row["uid"] = UUIDS[i]
        row["score"] = float(i) + 0.25
        row["label"] = None if i == 0 else f"l{i}"
    return rows


def make_table(metadata: MetaData) -> Table:
    name = unique("mvt")
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("uid", Uuid, nullable=False),
        Column("grp", String(8), nullable=False),
        Column("label", String(20), nullable=True),
        Column("score", Float, nullable=False),
        Column("props", JSONType, nullable=False),
        Column("geom", Geometry(), nullable=False),
        spatial_index(name, "geom"),
    )


@pytest.fixture(scope="module")
def tables(sqlite_backend: Backend, pg_backend: Backend) -> Iterator[dict[str, Table]]:
    made: dict[str, Table] = {}
    metadatas = []
    for backend in (sqlite_backend, pg_backend):
        metadata = MetaData()
        table = make_table(metadata)
        backend.create(metadata)
        metadatas.append((backend, metadata))

        async def fill(b: Backend = backend, t: Table = table) -> None:
            async with b.engine.begin() as conn:
                await conn.execute(insert(t), features())

        backend.run(fill())
        made[backend.name] = table
    yield made
    for backend, metadata in metadatas:
        backend.drop(metadata)


def render(backend: Backend, table: Table, **kwargs: Any) -> bytes:
    options: dict[str, Any] = {
        "geometry_column": "geom",
        "property_columns": ["uid", "label", "score", "props"],
        "where": table.c.grp == "a",
        "z": Z,
        "x": X,
        "y": Y,
        "layer_name": "things",
        "id_column": "id",
    }
    options.update(kwargs)

    async def go() -> bytes:
        async with AsyncSession(backend.engine) as session:
            return await render_mvt(session, table=table, **options)

    return backend.run(go())


def decode(data: bytes) -> dict[int, dict[str, Any]]:
    """Features of the 'things' layer by id: properties and geometry in tile pixels."""
    layer = mapbox_vector_tile.decode(data)["things"]
    assert layer["extent"] == EXTENT
    return {
        f["id"]: {"props": f["properties"], "geom": shape(f["geometry"])} for f in layer["features"]
    }


@pytest.fixture(scope="module")
def both(
    sqlite_backend: Backend, pg_backend: Backend, tables: dict[str, Table]
) -> dict[str, dict[int, dict[str, Any]]]:
    return {
        "sqlite": decode(render(sqlite_backend, tables["sqlite"])),
        "postgresql": decode(render(pg_backend, tables["postgresql"])),
    }


def test_expected_features_on_both_backends(both: dict[str, dict[int, dict[str, Any]]]) -> None:
    for tile in both.values():
        # centre, nw, square, holed, line, buffer; not outside (7), other group (8), speck (9).
        assert sorted(tile) == [1, 2, 3, 4, 5, 6]


def test_same_properties_on_both_backends(both: dict[str, dict[int, dict[str, Any]]]) -> None:
    sqlite, pg = both["sqlite"], both["postgresql"]
    for fid in sqlite:
        assert sqlite[fid]["props"] == pg[fid]["props"], fid
    centre = pg[1]["props"]
    # JSON keys expanded, integral numbers as integers, NULLs and nested values left out.
    assert centre == {
        "uid": str(UUIDS[0]),
        "score": 0.25,
        "name": "centre",
        "n": 3,
        "f": 2.5,
        "k": 1,
    }
    assert isinstance(centre["k"], int)
    assert pg[2]["props"] == {
        "uid": str(UUIDS[1]), "label": "l1", "score": 1.25, "name": "nw", "ok": True,
    }  # fmt: skip
    assert "none" not in pg[3]["props"] and "list" not in pg[4]["props"]


def test_same_geometries_on_both_backends(both: dict[str, dict[int, dict[str, Any]]]) -> None:
    sqlite, pg = both["sqlite"], both["postgresql"]
    for fid in sqlite:
        a, b = sqlite[fid]["geom"], pg[fid]["geom"]
        assert a.geom_type == b.geom_type, fid
        # Both snap to the same integer grid: at most a pixel apart anywhere.
        assert shapely.hausdorff_distance(a, b) <= 1.5, (fid, a.wkt, b.wkt)
        assert abs(a.area - b.area) <= 0.01 * max(b.area, 1.0), fid
        if isinstance(b, Polygon):  # the same winding (MVT: exterior clockwise on screen)
            assert a.exterior.is_ccw == b.exterior.is_ccw, fid
            assert [r.is_ccw for r in a.interiors] == [r.is_ccw for r in b.interiors], fid


def test_geometry_in_tile_pixels(both: dict[str, dict[int, dict[str, Any]]]) -> None:
    for tile in both.values():
        # Decoded with y up: (0.5, 0.5) of the tile is pixel (2048, 2048).
        centre = tile[1]["geom"]
        assert abs(centre.x - 2048) <= 1 and abs(centre.y - 2048) <= 1
        square = tile[3]["geom"]
        assert square.bounds == pytest.approx((819, 819, 1638, 1638), abs=2)
        holed = tile[4]["geom"]
        assert len(holed.interiors) == 1
        # The line is clipped at the buffer edge (4096 + 64).
        assert tile[5]["geom"].bounds[2] == pytest.approx(EXTENT + 64, abs=1)
        assert EXTENT < tile[6]["geom"].x <= EXTENT + 64


def test_where_none_includes_everything_in_the_tile(
    backend: Backend, tables: dict[str, Table]
) -> None:
    tile = decode(render(backend, tables[backend.name], where=None))
    assert sorted(tile) == [1, 2, 3, 4, 5, 6, 8]


def test_max_features_caps_the_tile(backend: Backend, tables: dict[str, Table]) -> None:
    tile = decode(render(backend, tables[backend.name], max_features=2))
    assert len(tile) == 2


def test_empty_tile_is_empty_bytes(backend: Backend, tables: dict[str, Table]) -> None:
    assert render(backend, tables[backend.name], x=0, y=0) == b""


def test_low_zoom_tile_holds_everything(backend: Backend, tables: dict[str, Table]) -> None:
    x, y = lonlat_to_tile(10.0, 51.0, 3)
    tile = decode(render(backend, tables[backend.name], z=3, x=x, y=y))
    # At z3 the speck collapses, the rest shrinks to a few pixels (the square stays a polygon
    # or collapses: both backends agree, compared above at z12).
    assert {1, 2, 5, 6, 7} <= set(tile)
    assert 8 not in tile and 9 not in tile


def test_feature_without_id_column(backend: Backend, tables: dict[str, Table]) -> None:
    layer = mapbox_vector_tile.decode(
        render(backend, tables[backend.name], id_column=None, property_columns=["label"])
    )["things"]
    assert len(layer["features"]) == 6
    assert {f["properties"].get("label") for f in layer["features"]} == {
        None, "l1", "l2", "l3", "l4", "l5",
    }  # fmt: skip


@pytest.mark.parametrize(("z", "x", "y"), [(-1, 0, 0), (25, 0, 0), (3, 8, 0), (3, 0, -1)])
def test_tile_out_of_range(
    backend: Backend, tables: dict[str, Table], z: int, x: int, y: int
) -> None:
    with pytest.raises(BadInput):
        render(backend, tables[backend.name], z=z, x=x, y=y)


def test_unknown_column(backend: Backend, tables: dict[str, Table]) -> None:
    with pytest.raises(ValueError, match="no column 'nope'"):
        render(backend, tables[backend.name], property_columns=["nope"])


@pytest.mark.parametrize(("z", "exact"), [(8, False), (8, True), (Z, False), (14, True)])
def test_postgis_plan_uses_the_gist_index(
    pg_backend: Backend, tables: dict[str, Table], z: int, exact: bool
) -> None:
    table = tables["postgresql"]
    x, y = (X << (z - Z), Y << (z - Z)) if z >= Z else (X >> (Z - z), Y >> (Z - z))
    sql = postgis_tile_sql(
        table.name, "geom", ["props"], where="grp = 'a'", tile=tile_args(z, x, y, ":z, :x, :y"),
        limit="10000", layer_name="things", exact=exact,
    )  # fmt: skip
    assert (":z" in sql) == (z >= LOW_ZOOM)  # a plan per tile below LOW_ZOOM, shared above

    async def go() -> str:
        async with pg_backend.engine.connect() as conn:
            await conn.execute(text("SET enable_seqscan = off"))
            rows = await conn.execute(text(f"EXPLAIN {sql}"), {"z": z, "x": x, "y": y})
            return "\n".join(r[0] for r in rows)

    plan = pg_backend.run(go())
    # The index condition is on the column itself (the envelope is transformed, not the column).
    assert f"ix_{table.name}_geom" in plan
    assert "Index Cond: (geom &&" in plan


def test_the_exact_filter_keeps_the_same_features(
    backend: Backend, tables: dict[str, Table], both: dict[str, dict[int, dict[str, Any]]]
) -> None:
    """ST_Intersects instead of boxes (PostGIS; SQLite ignores it): what a box-only candidate
    adds is clipped away anyway, so the tile is the same."""
    exact = decode(render(backend, tables[backend.name], exact=True))
    assert exact.keys() == both[backend.name].keys()


def test_tilejson() -> None:
    doc = tilejson(
        name="Things",
        tiles_url_template="https://example.test/api/layers/1/tiles/{z}/{x}/{y}",
        bounds=(6, 47, 15, 55),
        minzoom=0,
        maxzoom=16,
        vector_layers=[{"id": "things", "fields": {"name": "String"}}],
    )
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == ["https://example.test/api/layers/1/tiles/{z}/{x}/{y}"]
    assert doc["bounds"] == [6.0, 47.0, 15.0, 55.0]
    assert doc["center"] == [10.5, 51.0, 2]
    assert doc["vector_layers"] == [
        {"id": "things", "fields": {"name": "String"}, "minzoom": 0, "maxzoom": 16}
    ]
    world = tilejson(
        name="w", tiles_url_template="/t/{z}/{x}/{y}", bounds=None, minzoom=2, maxzoom=4,
        vector_layers=[{"id": "w"}],
    )  # fmt: skip
    assert world["bounds"][0] == -180.0 and world["vector_layers"][0]["fields"] == {}
    with pytest.raises(ValueError):
        tilejson(
            name="x", tiles_url_template="/", bounds=None, minzoom=5, maxzoom=4, vector_layers=[]
        )
    with pytest.raises(ValueError):
        tilejson(
            name="x", tiles_url_template="/", bounds=None, minzoom=0, maxzoom=4,
            vector_layers=[{"fields": {}}],
        )  # fmt: skip


def test_sqlite_tile_candidates_are_looked_up_in_the_rtree(
    sqlite_backend: Backend, tables: dict[str, Table]
) -> None:
    """The predicate must reach SQLite as `rowid IN (R*Tree)`, not `(...) = 1`, which hides
    it from the planner and scans the table with a Python call per row."""
    from worldbase.geo.spatial import bbox_filter

    table = tables["sqlite"]
    statement = (
        select(table.c.id).where(bbox_filter(table.c.geom, W, S, E, N)).where(table.c.grp == "a")
    )

    async def go() -> str:
        async with sqlite_backend.engine.connect() as conn:
            compiled = statement.compile(
                conn.sync_connection, compile_kwargs={"literal_binds": True}
            )
            rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            return "\n".join(str(r[-1]) for r in rows)

    plan = sqlite_backend.run(go())
    assert "USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
