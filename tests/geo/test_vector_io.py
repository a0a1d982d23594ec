"""Vector file import (sniffed by content, validated, reprojected) and the bulk insert."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from pyogrio.raw import write
from shapely.geometry import LineString, Point, Polygon, box
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from tests.geo.conftest import Backend, unique
from worldbase.core.db import JSONType
from worldbase.core.errors import BadInput, PayloadTooLarge
from worldbase.core.ids import time_ordered_uuids
from worldbase.geo import bulk_insert, vector_io
from worldbase.geo.bulk_insert import bulk_insert_features
from worldbase.geo.spatial import Geometry, bbox_filter, spatial_index
from worldbase.geo.vector_io import ImportedFeature, read_features

# (10, 51) and (11, 52) in EPSG:3857 metres.
MERC_10_51 = (1113194.9079327357, 6621293.722740169)
MERC_11_52 = (1224514.3987260093, 6800125.454397307)


def read(path: Path, filename: str = "upload") -> list[ImportedFeature]:
    return list(read_features(path, filename=filename))


def bad(path: Path, *words: str, filename: str = "upload") -> BadInput:
    with pytest.raises(BadInput) as caught:
        read(path, filename)
    for word in words:
        assert word in caught.value.message, caught.value.message
    return caught.value


def geojson(tmp_path: Path, document: Any, name: str = "in.geojson", prefix: bytes = b"") -> Path:
    path = tmp_path / name
    path.write_bytes(prefix + json.dumps(document).encode())
    return path


def collection(*features: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features), **extra}


def feature(geometry: Any, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def point(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [x, y]}


# --- GeoJSON ---------------------------------------------------------------------------------


def test_geojson(tmp_path: Path) -> None:
    clockwise = [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]
    path = geojson(
        tmp_path,
        collection(
            feature(point(10, 51), name="a", n=1),
            feature({"type": "Polygon", "coordinates": clockwise}),
            {
                "type": "Feature",
                "geometry": point(
                    1,
                    2,
                ),
                "properties": None,
            },
        ),
        # Sniffed by content: the name says CSV, a BOM and blank lines lead.
        name="looks.csv",
        prefix=b"\xef\xbb\xbf\n  ",
    )
    rows = read(path)
    assert [r.index for r in rows] == [0, 1, 2]
    assert rows[0].geometry.equals(Point(10, 51)) and rows[0].properties == {"name": "a", "n": 1}
    assert rows[1].geometry.exterior.is_ccw  # normalised to the right-hand rule
    assert rows[2].properties == {}


def test_geojson_single_feature(tmp_path: Path) -> None:
    rows = read(geojson(tmp_path, feature(point(1, 2), k="v")))
    assert len(rows) == 1 and rows[0].properties == {"k": "v"}


def test_geojson_reprojected_from_crs_member(tmp_path: Path) -> None:
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    rows = read(geojson(tmp_path, collection(feature(point(*MERC_10_51)), crs=crs)))
    assert rows[0].geometry.x == pytest.approx(10.0) and rows[0].geometry.y == pytest.approx(51.0)
    crs84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    rows = read(geojson(tmp_path, collection(feature(point(10, 51)), crs=crs84)))
    assert (rows[0].geometry.x, rows[0].geometry.y) == (10, 51)


def test_geojson_bad_rows_name_the_index(tmp_path: Path) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    path = geojson(
        tmp_path, collection(feature(point(1, 1)), feature(point(2, 2)), feature(bowtie))
    )
    error = bad(path, "features[2].geometry", "Self-intersection")
    assert error.detail["path"] == "features[2].geometry"
    bad(geojson(tmp_path, collection(feature(point(1, 1)), feature(None))), "features[1].geometry")
    bad(geojson(tmp_path, collection(feature(point(200, 1)))), "longitude 200")
    no_geometry = collection({"type": "Feature"})
    bad(geojson(tmp_path, no_geometry), "features[0]", "must have a 'geometry' field")


def test_geojson_bad_documents(tmp_path: Path) -> None:
    bad(geojson(tmp_path, {"type": "Point", "coordinates": [1, 2]}), "FeatureCollection")
    bad(geojson(tmp_path, {"type": "FeatureCollection", "features": 3}), "'features'")
    (tmp_path / "broken").write_bytes(b'{"type": "FeatureCollection", "features": [')
    bad(tmp_path / "broken", "not valid JSON")
    crs = {"type": "name", "properties": {"name": "EPSG:999999"}}
    bad(geojson(tmp_path, collection(feature(point(1, 1)), crs=crs)), "coordinate reference")


# --- GeoPackage ------------------------------------------------------------------------------


def write_gpkg(
    path: Path,
    geoms: list[Any],
    crs: str = "EPSG:4326",
    layer: str = "things",
    append: bool = False,
) -> None:
    n = len(geoms)
    fields = [
        np.arange(n, dtype=np.int64),
        np.array([f"name {i}" for i in range(n)], dtype=object),
        np.array([0.5 + i if i % 2 == 0 else np.nan for i in range(n)]),
    ]
    write(
        str(path),
        np.array([shapely.to_wkb(g) for g in geoms], dtype=object),
        fields,
        ["num", "name", "score"],
        layer=layer,
        driver="GPKG",
        geometry_type="Unknown",
        crs=crs,
        append=append,
    )


def test_geopackage_sniffed_and_read(tmp_path: Path) -> None:
    path = tmp_path / "data.gpkg"
    write_gpkg(path, [Point(10, 51), box(1, 1, 2, 2), Point(3, 4)])
    renamed = tmp_path / "data.json"  # a misleading name: the content decides
    path.rename(renamed)
    rows = read(renamed)
    assert [r.index for r in rows] == [0, 1, 2]
    assert rows[0].geometry.equals(Point(10, 51))
    assert rows[1].geometry.equals(box(1, 1, 2, 2))
    assert rows[0].properties == {"num": 0, "name": "name 0", "score": 0.5}
    assert rows[1].properties["score"] is None  # NULL / NaN


def test_geopackage_reprojected(tmp_path: Path) -> None:
    path = tmp_path / "merc.gpkg"
    write_gpkg(path, [Point(*MERC_10_51), Point(*MERC_11_52)], crs="EPSG:3857")
    rows = read(path)
    assert rows[0].geometry.coords[0] == pytest.approx((10.0, 51.0))
    assert rows[1].geometry.coords[0] == pytest.approx((11.0, 52.0))


def test_geopackage_bad_rows_and_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.gpkg"
    bowtie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    write_gpkg(path, [Point(1, 1), bowtie])
    error = bad(path, "bad.gpkg, feature 1", "Self-intersection", filename="bad.gpkg")
    assert error.detail["index"] == 1

    two = tmp_path / "two.gpkg"
    write_gpkg(two, [Point(1, 1)], layer="a")
    write_gpkg(two, [Point(1, 1)], layer="b", append=True)
    bad(two, "2 layers")

    import sqlite3

    plain = tmp_path / "plain.sqlite"
    with sqlite3.connect(plain) as conn:
        conn.execute("CREATE TABLE t (x)")
    bad(plain, "not a GeoPackage")

    truncated = tmp_path / "truncated.gpkg"
    truncated.write_bytes(path.read_bytes()[:2048])
    bad(truncated, "could not read the GeoPackage")


# --- Zipped Shapefile ------------------------------------------------------------------------


def shapefile_parts(tmp_path: Path, geoms: list[Any], crs: str = "EPSG:4326") -> dict[str, bytes]:
    folder = tmp_path / f"shp-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    write(
        str(folder / "roads.shp"),
        np.array([shapely.to_wkb(g) for g in geoms], dtype=object),
        [np.array([f"r{i}" for i in range(len(geoms))], dtype=object)],
        ["name"],
        driver="ESRI Shapefile",
        geometry_type=geoms[0].geom_type,
        crs=crs,
    )
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def zip_of(tmp_path: Path, members: dict[str, bytes], name: str = "upload.zip") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def test_zipped_shapefile(tmp_path: Path) -> None:
    parts = shapefile_parts(tmp_path, [Point(*MERC_10_51), Point(*MERC_11_52)], crs="EPSG:3857")
    assert {"roads.shp", "roads.shx", "roads.dbf", "roads.prj"} <= set(parts)
    members = {f"folder/{k}": v for k, v in parts.items()}
    members["__MACOSX/folder/._roads.shp"] = b"junk"
    members["folder/readme.txt"] = b"hello"
    rows = read(zip_of(tmp_path, members, name="roads.bin"))
    assert [r.properties for r in rows] == [{"name": "r0"}, {"name": "r1"}]
    assert rows[0].geometry.coords[0] == pytest.approx((10.0, 51.0))


def test_zip_guards(tmp_path: Path) -> None:
    parts = shapefile_parts(tmp_path, [Point(1, 2)])
    evil = {("../" + k if k.endswith(".shp") else k): v for k, v in parts.items()}
    error = bad(zip_of(tmp_path, evil, "evil.zip"), "unsafe path")
    assert error.detail["member"] == "../roads.shp"
    absolute = {("/tmp/" + k): v for k, v in parts.items()}
    bad(zip_of(tmp_path, absolute, "abs.zip"), "unsafe path")

    twice = {**parts, **{"other" + k.removeprefix("roads"): v for k, v in parts.items()}}
    bad(zip_of(tmp_path, twice, "twice.zip"), "exactly one Shapefile", "other.shp", "roads.shp")
    bad(zip_of(tmp_path, {"a.txt": b"x"}, "none.zip"), "found none")
    no_dbf = {k: v for k, v in parts.items() if not k.endswith(".dbf")}
    bad(zip_of(tmp_path, no_dbf, "nodbf.zip"), "lacks .dbf")

    # A bomb: 40 MB of zeros deflate to ~40 KB; unpacking stops at the ratio limit.
    bomb = {**parts, "roads.dbf": b"\x00" * 40_000_000}
    bad(zip_of(tmp_path, bomb, "bomb.zip"), "unpacks too far")

    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    bad(tmp_path / "broken.zip", "not a readable ZIP")


def test_shapefile_invalid_geometry_names_the_feature(tmp_path: Path) -> None:
    parts = shapefile_parts(tmp_path, [Point(1, 2), Point(1, 95)])
    bad(zip_of(tmp_path, parts), "feature 1", "latitude 95")


# --- The per-feature vertex cap -------------------------------------------------------------


def _line(n: int) -> LineString:
    return LineString([(i / n, (i % 2) / n) for i in range(n)])


def _capped_file(tmp_path: Path, kind: str, geoms: list[Any]) -> Path:
    tmp_path.mkdir(exist_ok=True)
    if kind == "geojson":
        features = [feature(shapely.geometry.mapping(g)) for g in geoms]
        return geojson(tmp_path, collection(*features))
    if kind == "gpkg":
        write_gpkg(tmp_path / "in.gpkg", geoms)
        return tmp_path / "in.gpkg"
    if kind == "shapefile":
        return zip_of(tmp_path, shapefile_parts(tmp_path, geoms))
    return csv_file(tmp_path, "n,wkt\n" + "".join(f'{i},"{g.wkt}"\n' for i, g in enumerate(geoms)))


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("geojson", "features[1]"),
        ("gpkg", "feature 1"),
        ("shapefile", "feature 1"),
        ("csv", "line 3"),
    ],
)
def test_a_feature_over_the_vertex_cap_is_a_bad_row(tmp_path: Path, kind: str, where: str) -> None:
    """Issue 18 item 7 (imports): `max_vertices` positions per feature, in every format; one
    more fails the read, the feature and the setting named."""
    path = _capped_file(tmp_path, kind, [_line(50), _line(51), _line(2)])
    with pytest.raises(BadInput) as caught:
        list(read_features(path, filename="up", max_vertices=50, limit_name="THE_SETTING"))
    error = caught.value
    assert where in error.message and "THE_SETTING" in error.message, error.message
    assert "more than 50 positions" in error.message
    assert error.detail["limit"] == 50 and error.detail["setting"] == "THE_SETTING"
    # At the cap, every feature is read.
    fine = _capped_file(tmp_path / "fine", kind, [_line(50), _line(2)])
    rows = list(read_features(fine, filename="up", max_vertices=50, limit_name="THE_SETTING"))
    assert [len(r.geometry.coords) for r in rows] == [50, 2]


# --- CSV -------------------------------------------------------------------------------------


def csv_file(tmp_path: Path, content: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_csv_with_wkt(tmp_path: Path) -> None:
    content = (
        "name;WKT;zip;score;note\n"
        'a;"POINT (10 51)";007;1.5;\n'
        "\n"
        'b;"POLYGON ((0 0, 0 1, 1 1, 1 0, 0 0))";12;-2;1e3\n'
    )
    rows = read(csv_file(tmp_path, content))
    assert [r.index for r in rows] == [0, 1]
    assert rows[0].geometry.equals(Point(10, 51))
    assert rows[0].properties == {"name": "a", "zip": "007", "score": 1.5, "note": None}
    assert rows[1].properties == {"name": "b", "zip": 12, "score": -2, "note": 1000.0}
    assert rows[1].geometry.exterior.is_ccw


def test_csv_with_lon_lat(tmp_path: Path) -> None:
    rows = read(csv_file(tmp_path, "id,Longitude,Latitude\n1,10,51\n2,-3.5,40.25\n"))
    assert [(r.geometry.x, r.geometry.y) for r in rows] == [(10, 51), (-3.5, 40.25)]
    assert rows[1].properties == {"id": 2}


def test_csv_bad_rows_name_the_line(tmp_path: Path) -> None:
    error = bad(csv_file(tmp_path, "wkt,n\nPOINT (1 1),1\nPOINT (1,2\n"), "line 3", "unreadable")
    assert error.detail["line"] == 3
    bad(csv_file(tmp_path, "lon,lat\n1,2\n\n5,abc\n"), "line 4")
    bad(csv_file(tmp_path, "lon,lat\n1,2\n1,91\n"), "line 3", "latitude 91")
    bad(csv_file(tmp_path, "wkt,n\nPOINT (1 1),1,extra\n"), "line 2", "3 values for 2 columns")
    bad(csv_file(tmp_path, 'wkt\n"POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"\n'), "line 2", "Self-inter")
    bad(csv_file(tmp_path, "wkt\nPOINT EMPTY\n"), "line 2", "no geometry")


def test_csv_bad_files(tmp_path: Path) -> None:
    bad(csv_file(tmp_path, "name,value\na,1\n"), "WKT column")
    (tmp_path / "bin").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    bad(tmp_path / "bin", "not a GeoJSON, GeoPackage, zipped Shapefile or UTF-8 CSV")
    (tmp_path / "empty").write_bytes(b"  \n")
    bad(tmp_path / "empty", "is empty")


def test_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector_io, "MAX_IMPORT_BYTES", 10)
    with pytest.raises(PayloadTooLarge, match="at most 10 bytes"):
        read_features(csv_file(tmp_path, "lon,lat\n1,2\n"), filename="x.csv")


# --- Bulk insert -----------------------------------------------------------------------------


def bulk_table(metadata: MetaData) -> Table:
    name = unique("bulk")
    return Table(
        name,
        metadata,
        Column("id", Uuid, primary_key=True, default=uuid.uuid4),
        Column("kind", String(10), nullable=False, default="feature"),
        Column("n", Integer, nullable=False),
        Column("props", JSONType, nullable=False),
        Column("geom", Geometry(), nullable=False),
        spatial_index(name, "geom"),
    )


def test_bulk_insert(backend: Backend) -> None:
    metadata = MetaData()
    table = bulk_table(metadata)
    backend.create(metadata)
    rows = [
        {"n": i, "props": {"i": i, "s": f"x{i}"}, "geom": Point(i * 0.01, 50 + i * 0.001)}
        for i in range(2500)
    ]
    rows[0]["geom"] = box(0, 0, 1, 1)

    async def go() -> tuple[int, int, int, Any, Any, Any]:
        async with AsyncSession(backend.engine) as session, session.begin():
            count = await bulk_insert_features(session, table, iter(rows), chunk=1000)
        async with AsyncSession(backend.engine) as session:
            total = (await session.execute(select(func.count()).select_from(table))).scalar_one()
            # The spatial index sees the rows (R*Tree triggers / GiST).
            near = (
                select(func.count())
                .select_from(table)
                .where(bbox_filter(table.c.geom, 0.995, 0, 1.005, 60))
            )
            hits = (await session.execute(near)).scalar_one()
            first = (await session.execute(select(table).where(table.c.n == 0))).one()
            distinct = select(func.count(table.c.id.distinct()))
            assert (await session.execute(distinct)).scalar_one() == 2500
            assert isinstance(first.id, uuid.UUID) and first.id.version == 7
        return count, total, hits, first.geom, first.props, first.kind

    count, total, hits, geom, props, kind = backend.run(go())
    assert count == total == 2500
    # Row 0's box (lon 0..1) and row 100 (lon 1.0) touch the query box; row 99 (0.99) not.
    assert hits == 2
    assert geom.equals(box(0, 0, 1, 1)) and props == {"i": 0, "s": "x0"} and kind == "feature"
    backend.drop(metadata)


def test_bulk_insert_rolls_back_and_leaves_the_connection_unchanged(backend: Backend) -> None:
    metadata = MetaData()
    table = bulk_table(metadata)
    backend.create(metadata)

    async def go() -> tuple[int, Any]:
        async with AsyncSession(backend.engine) as session:
            async with session.begin():
                rows = [{"n": 1, "props": {}, "geom": Point(1, 2)}]
                await bulk_insert_features(session, table, rows)
                await session.rollback()
            total = (await session.execute(select(func.count()).select_from(table))).scalar_one()
            raw = None
            if backend.name == "postgresql":
                # A raw geometry still reads as the server's hex EWKB text after COPY's codec.
                raw = (
                    await session.execute(text("SELECT 'SRID=4326;POINT(1 2)'::geometry"))
                ).scalar()
        return total, raw

    total, raw = backend.run(go())
    assert total == 0
    if backend.name == "postgresql":
        assert raw == "0101000020E6100000000000000000F03F0000000000000040"
    backend.drop(metadata)


def test_read_ahead_runs_the_iterator_in_one_thread_and_closes_it() -> None:
    events: list[tuple[str, int | None, str]] = []

    def numbers(n: int, bad: int | None = None) -> Iterator[int]:
        try:
            for i in range(n):
                if i == bad:
                    raise BadInput(f"row {i}")
                events.append(("made", i, threading.current_thread().name))
                yield i
        finally:
            events.append(("closed", None, threading.current_thread().name))

    async def consume(items: Iterator[int], stop: int | None = None) -> list[int]:
        seen: list[int] = []
        async with aclosing(bulk_insert.read_ahead(items)) as ahead:
            async for i in ahead:
                if i == stop:
                    raise RuntimeError("the consumer failed")
                seen.append(i)
        return seen

    assert asyncio.run(consume(numbers(5))) == [0, 1, 2, 3, 4]
    assert {name for _, _, name in events} == {"read-ahead_0"}
    events.clear()
    with pytest.raises(BadInput, match="row 3"):
        asyncio.run(consume(numbers(5, bad=3)))
    events.clear()
    with pytest.raises(RuntimeError):
        asyncio.run(consume(numbers(1000), stop=2))
    # At most one item ahead of the consumer (the step for item 3 may be cancelled before
    # the thread starts it), then closed in its thread before read_ahead returned.
    made = [("made", i) for i in range(4)]
    assert [(what, i) for what, i, _ in events] in ([*made[:3], ("closed", None)],
                                                    [*made, ("closed", None)])  # fmt: skip
    assert not any(t.name.startswith("read-ahead") for t in threading.enumerate())


def test_geojson_point_fast_path_matches_the_parser(tmp_path: Path) -> None:
    path = tmp_path / "points.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2, 30]},'
        ' "properties": {"a": 1}},'
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-180, 90.0]},'
        ' "properties": null}]}'
    )
    rows = read(path)
    assert [(r.geometry.wkt, r.properties) for r in rows] == [
        ("POINT (1 2)", {"a": 1}),
        ("POINT (-180 90)", {}),
    ]
    nan = '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, NaN]}}'
    path.write_text(f'{{"type": "FeatureCollection", "features": [{nan}]}}')
    bad(path, "features[0].geometry", "finite")
    flag = '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [true, 1]}}'
    path.write_text(f'{{"type": "FeatureCollection", "features": [{flag}]}}')
    bad(path, "features[0].geometry", "numbers")
    props = (
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]}, "properties": 3}'
    )
    path.write_text(f'{{"type": "FeatureCollection", "features": [{props}]}}')
    bad(path, "features[0]", "'properties' must be an object")


def test_geojson_without_points_and_over_several_chunks(tmp_path: Path) -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    assert [r.index for r in read(geojson(tmp_path, collection(feature(square))))] == [0]
    many = [feature(point(i % 180, 0), i=i) for i in range(12_001)]
    many[10_005] = feature(square, i=10_005)
    rows = read(geojson(tmp_path, collection(*many)))
    assert [r.index for r in rows] == list(range(12_001))
    assert rows[11_999].properties == {"i": 11_999} and rows[11_999].geometry.x == 119
    assert rows[10_005].geometry.geom_type == "Polygon"


def test_bulk_ids_are_version_7_ascending_and_unique() -> None:
    before = time.time_ns() // 1_000_000
    first = [uuid.UUID(h) for h in time_ordered_uuids(70_000, hyphens=False)]
    second = [uuid.UUID(h) for h in time_ordered_uuids(3)]
    after = time.time_ns() // 1_000_000
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in first + second)
    # The batch is in order (the position crosses every byte of its 26 bits at 70,000).
    assert first == sorted(first) and len(set(first + second)) == 70_003
    millis = {u.int >> 80 for u in first + second}
    assert all(before <= m <= after for m in millis)
    with pytest.raises(ValueError, match="2\\*\\*26"):
        time_ordered_uuids(1 << 26)
