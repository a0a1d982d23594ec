"""Property: bbox, intersects and within-distance give the same ids on SQLite and PostGIS.

Random valid points, lines and polygons (clustered so that they meet, some near the
antimeridian and a pole) go into both backends; random queries, whose edges are often
taken from the stored vertices, must return the same id sets on both and match a
brute-force shapely oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import MetaData, Table, delete, insert, select

from tests.geo.conftest import Backend, geometry_table, unique
from worldbase.geo.geodesic import geodesic_region
from worldbase.geo.spatial import bbox_filter, intersects, within_distance

CENTRES = [(0.0, 0.0), (177.0, 60.0), (-178.0, -70.0)]


@st.composite
def coordinates(draw: st.DrawFn, centre: tuple[float, float]) -> tuple[float, float]:
    dx = draw(st.one_of(st.integers(-4, 4).map(float), st.floats(-4, 4)))
    dy = draw(st.one_of(st.integers(-4, 4).map(float), st.floats(-4, 4)))
    return max(-180.0, min(180.0, centre[0] + dx)), max(-90.0, min(90.0, centre[1] + dy))


@st.composite
def geometries(draw: st.DrawFn, centre: tuple[float, float]) -> BaseGeometry:
    kind = draw(st.sampled_from(["point", "line", "box", "triangle", "disc"]))
    xy = coordinates(centre)
    if kind == "point":
        geom: BaseGeometry = Point(draw(xy))
    elif kind == "line":
        geom = LineString(draw(st.lists(xy, min_size=2, max_size=5)))
    elif kind == "triangle":
        geom = Polygon(draw(st.lists(xy, min_size=3, max_size=3)))
    else:
        x, y = draw(xy)
        size = draw(st.floats(0.01, 3))
        geom = box(x, y, x + size, y + size) if kind == "box" else Point(x, y).buffer(size, 2)
        geom = shapely.clip_by_rect(geom, -180, -90, 180, 90)
    if geom.is_empty or not geom.is_valid or (kind in ("triangle", "disc") and geom.area < 1e-9):
        return Point(draw(xy))
    return geom


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[BaseGeometry], list[tuple[Any, ...]]]:
    centre = draw(st.sampled_from(CENTRES))
    rows = draw(st.lists(geometries(centre), min_size=1, max_size=12))
    vertices = [c for g in rows for c in shapely.get_coordinates(g).tolist()]
    edge = st.one_of(coordinates(centre), st.sampled_from(vertices).map(tuple))
    queries: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["bbox", "intersects", "within"]))
        if kind == "bbox":
            (x1, y1), (x2, y2) = draw(edge), draw(edge)
            queries.append(("bbox", min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)))
        elif kind == "intersects":
            queries.append(("intersects", draw(geometries(centre))))
        else:
            target = draw(st.one_of(edge.map(Point), geometries(centre)))
            queries.append(("within", target, draw(st.floats(0, 300_000))))
    return rows, queries


def oracle(rows: list[BaseGeometry], query: tuple[Any, ...]) -> set[int]:
    if query[0] == "bbox":
        minx, miny, maxx, maxy = query[1:]
        return {
            i
            for i, g in enumerate(rows)
            if g.bounds[2] >= minx
            and g.bounds[0] <= maxx
            and g.bounds[3] >= miny
            and g.bounds[1] <= maxy
        }
    region = query[1] if query[0] == "intersects" else geodesic_region(query[1], query[2])
    return {i for i, g in enumerate(rows) if g.intersects(region)}


def predicate(table: Table, query: tuple[Any, ...]) -> Any:
    if query[0] == "bbox":
        return bbox_filter(table.c.geom, *query[1:])
    if query[0] == "intersects":
        return intersects(table.c.geom, query[1])
    return within_distance(table.c.geom, query[1], query[2])


@pytest.fixture(scope="module")
def tables(sqlite_backend: Backend, pg_backend: Backend) -> Iterator[list[tuple[Backend, Table]]]:
    metadata = MetaData()
    table = geometry_table(metadata, unique("geo_prop"))
    backends = [sqlite_backend, pg_backend]
    for backend in backends:
        backend.create(metadata)
    yield [(backend, table) for backend in backends]
    for backend in backends:
        backend.drop(metadata)


def answers(
    backend: Backend, table: Table, rows: list[BaseGeometry], queries: list[Any]
) -> list[set[int]]:
    async def go() -> list[set[int]]:
        async with backend.engine.begin() as conn:
            await conn.execute(delete(table))
            await conn.execute(insert(table), [{"id": i, "geom": g} for i, g in enumerate(rows)])
            results = []
            for query in queries:
                found = await conn.execute(select(table.c.id).where(predicate(table, query)))
                results.append(set(found.scalars()))
            return results

    return backend.run(go())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_both_backends_agree_with_the_oracle(
    tables: list[tuple[Backend, Table]],
    scenario: tuple[list[BaseGeometry], list[tuple[Any, ...]]],
) -> None:
    rows, queries = scenario
    expected = [oracle(rows, q) for q in queries]
    for backend, table in tables:
        assert answers(backend, table, rows, queries) == expected, backend.name
