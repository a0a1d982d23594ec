"""Vector file import: GeoJSON, GeoPackage, zipped Shapefile and CSV (WKT or lon/lat).

The format is sniffed from the content, never the file name: the SQLite header with the
GeoPackage application id, a ZIP local header, a JSON object; anything else must be UTF-8
CSV. Every geometry goes through `geo.geometry` (RFC 7946 rules, valid, 2D, right-hand
rule) after reprojection to EPSG:4326 when the source declares another CRS. A bad row
raises `BadInput` naming it (`features[3]`, `line 12`, `feature 7`); nothing is skipped.
So does a feature with more than `max_vertices` positions (the caller's per-feature cap,
`limit_name` the setting named in the 422).

The GeoPackage and Shapefile readers are in `vector_ogr`, what all readers share in
`vector_features`; `bulk_insert` writes the rows.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from worldbase.core.errors import PayloadTooLarge
from worldbase.geo.geometry import DEFAULT_MAX_VERTICES, parse_feature
from worldbase.geo.vector_features import (
    MAX_IMPORT_BYTES,
    FeatureCap,
    ImportedFeature,
    bad_input,
    transformer_to_wgs84,
    validated,
)
from worldbase.geo.vector_ogr import read_ogr, read_zipped_shapefile

__all__ = ["MAX_IMPORT_BYTES", "ImportedFeature", "read_features"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_WKT_HEADERS = ("wkt", "geometry", "geom", "the_geom")
_LON_HEADERS = ("lon", "lng", "long", "longitude", "x")
_LAT_HEADERS = ("lat", "latitude", "y")


def read_features(
    path: Path, *, filename: str, max_vertices: int = DEFAULT_MAX_VERTICES, limit_name: str = ""
) -> Iterator[ImportedFeature]:
    """The features of an uploaded file, validated, in EPSG:4326.

    The format is recognised (and the size checked) at once; rows are validated as the
    iterator is consumed, so callers import inside a transaction (all or nothing). A
    feature with more than `max_vertices` positions is a `BadInput` naming the feature and
    `limit_name` (the setting behind the cap), like any other bad row.
    """
    cap = FeatureCap(max_vertices, limit_name)
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(
            f"{filename} is {size} bytes; imports take at most {MAX_IMPORT_BYTES} bytes",
            detail={"limit": MAX_IMPORT_BYTES, "size": size},
        )
    with path.open("rb") as handle:
        head = handle.read(128)
    if head.startswith(_SQLITE_MAGIC):
        if head[68:72] not in _GPKG_IDS:
            raise bad_input(f"{filename} is an SQLite database but not a GeoPackage", "format")
        return read_ogr(path, filename, cap, suffix=".gpkg", what="GeoPackage")
    if head[:4] in _ZIP_MAGIC:
        return read_zipped_shapefile(path, filename, cap)
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if stripped.startswith(b"{"):
        return _read_geojson(path, filename, cap)
    if not stripped:
        raise bad_input(f"{filename} is empty", "format")
    return _read_csv(path, filename, cap)


def _read_geojson(path: Path, filename: str, cap: FeatureCap) -> Iterator[ImportedFeature]:
    data = path.read_bytes()
    try:
        # orjson parses ~3x faster; it refuses NaN/Infinity, which json takes so that the
        # geometry check can name the feature and coordinate (the error path only).
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        document = None
    try:
        if document is None:
            document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_input(f"{filename} is not valid JSON: {exc}", "invalid JSON") from None
    if isinstance(document, dict) and document.get("type") == "Feature":
        document = {"type": "FeatureCollection", "features": [document], "crs": document.get("crs")}
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise bad_input(
            f"{filename}: expected a GeoJSON FeatureCollection", "not a FeatureCollection"
        )
    features = document.get("features")
    if not isinstance(features, list):
        raise bad_input(f"{filename}: 'features' must be an array", "not a FeatureCollection")
    transformer = transformer_to_wgs84(_geojson_crs(document.get("crs"), filename), filename)
    return _geojson_features(features, transformer, cap)


def _geojson_crs(member: Any, filename: str) -> str | None:
    # The 2008 GeoJSON `crs` member (RFC 7946 dropped it, files still carry it).
    if member is None:
        return None
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    if not isinstance(name, str):
        raise bad_input(f"{filename}: unreadable 'crs' member", "crs")
    return name


def _geojson_features(
    features: list[Any], transformer: Transformer | None, cap: FeatureCap, chunk: int = 10_000
) -> Iterator[ImportedFeature]:
    for begin in range(0, len(features), chunk):
        done: list[ImportedFeature | None] = []
        fast: list[tuple[int, float, float, dict[str, Any]]] = []
        for i in range(begin, min(begin + chunk, len(features))):
            feature = features[i]
            if transformer is not None and isinstance(feature, dict):
                geometry = _transform_geojson(feature.get("geometry"), transformer)
                feature = {**feature, "geometry": geometry}
            point = _simple_point(feature)
            if point is not None:
                fast.append((i, *point))
                done.append(None)
                continue
            parsed = parse_feature(
                feature,
                path=f"features[{i}]",
                max_vertices=cap.max_vertices,
                limit_name=cap.limit_name,
            )
            assert parsed.geometry is not None  # null geometries are rejected by parse_feature
            done.append(ImportedFeature(i, parsed.geometry, parsed.properties))
        # Points built in one vectorised call (one by one they cost more than the parsing).
        points = shapely.points(
            np.array([(x, y) for _, x, y, _ in fast], dtype=float).reshape(-1, 2)
        )
        for (i, _x, _y, properties), geometry in zip(fast, np.atleast_1d(points), strict=True):
            done[i - begin] = ImportedFeature(i, geometry, properties)
        for item in done:
            assert item is not None
            yield item


def _simple_point(feature: Any) -> tuple[float, float, dict[str, Any]] | None:
    """The common case (a valid Point feature) without the general parser; None otherwise,
    and the general parser then accepts it or says precisely what is wrong."""
    if type(feature) is not dict or feature.get("type") != "Feature":
        return None
    geometry, properties = feature.get("geometry"), feature.get("properties")
    if type(geometry) is not dict or geometry.get("type") != "Point":
        return None
    if properties is not None and type(properties) is not dict:
        return None
    coords = geometry.get("coordinates")
    if type(coords) is not list or not 2 <= len(coords) <= 3:
        return None
    if not all(type(c) is float or type(c) is int for c in coords):
        return None
    lon, lat = float(coords[0]), float(coords[1])
    # NaN and infinities fail these comparisons too.
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        return None
    if len(coords) == 3 and not math.isfinite(coords[2]):
        return None
    return lon, lat, dict(properties) if properties else {}


def _transform_geojson(geometry: Any, transformer: Transformer) -> Any:
    """The geometry with its positions reprojected (malformed parts left for validation)."""

    def positions(value: Any) -> Any:
        if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
            if len(value) < 2 or any(isinstance(v, bool) for v in value):
                return value
            x, y = transformer.transform(value[0], value[1])
            return [x, y, *value[2:]]
        if isinstance(value, list):
            return [positions(v) for v in value]
        return value

    if not isinstance(geometry, dict):
        return geometry
    if "geometries" in geometry and isinstance(geometry["geometries"], list):
        members = [_transform_geojson(g, transformer) for g in geometry["geometries"]]
        return {**geometry, "geometries": members}
    if "coordinates" in geometry:
        return {**geometry, "coordinates": positions(geometry["coordinates"])}
    return geometry


# --- GeoPackage and Shapefile (GDAL through pyogrio) ------------------------------------------


def _read_csv(path: Path, filename: str, cap: FeatureCap) -> Iterator[ImportedFeature]:
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad_input(
            f"{filename}: not a GeoJSON, GeoPackage, zipped Shapefile or UTF-8 CSV file",
            "unknown format",
        ) from None
    try:
        dialect: Any = csv.Sniffer().sniff(content[:65536], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(content, newline=""), dialect)
    header = next(reader, None)
    if not header:
        raise bad_input(f"{filename}: the CSV file has no header row", "no header")
    names = [h.strip() for h in header]
    lowered = [n.lower() for n in names]
    wkt = next((lowered.index(h) for h in _WKT_HEADERS if h in lowered), None)
    lon = next((lowered.index(h) for h in _LON_HEADERS if h in lowered), None)
    lat = next((lowered.index(h) for h in _LAT_HEADERS if h in lowered), None)
    if wkt is None and (lon is None or lat is None):
        raise bad_input(
            f"{filename}: the CSV header needs a WKT column ({', '.join(_WKT_HEADERS)}) "
            "or longitude and latitude columns (lon/lng/longitude/x, lat/latitude/y)",
            "no geometry column",
        )
    geometry_columns: set[int | None] = {wkt} if wkt is not None else {lon, lat}
    return _csv_rows(reader, names, wkt, lon, lat, geometry_columns, filename, cap)


def _csv_rows(
    reader: Any,
    names: list[str],
    wkt: int | None,
    lon: int | None,
    lat: int | None,
    geometry_columns: set[int | None],
    filename: str,
    cap: FeatureCap,
) -> Iterator[ImportedFeature]:
    index = 0
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise bad_input(
                f"{filename}, line {line}: {len(row)} values for {len(names)} columns",
                "row length",
                line=line,
            )
        geom = _csv_geometry(row, wkt, lon, lat, line, filename)
        geometry = validated(geom, f"line {line}", filename, cap, line=line)
        properties = {
            name: _cell(row[j]) for j, name in enumerate(names) if j not in geometry_columns
        }
        yield ImportedFeature(index, geometry, properties)
        index += 1


def _csv_geometry(
    row: list[str], wkt: int | None, lon: int | None, lat: int | None, line: int, filename: str
) -> BaseGeometry:
    try:
        if wkt is not None:
            return shapely.from_wkt(row[wkt].strip())
        assert lon is not None and lat is not None
        return shapely.Point(float(row[lon]), float(row[lat]))
    except (shapely.errors.GEOSException, ValueError) as exc:
        raise bad_input(
            f"{filename}, line {line}: unreadable geometry: {exc}", "bad geometry", line=line
        ) from None


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def _cell(value: str) -> Any:
    """Numbers become numbers only in their canonical form ("007", "1." stay text)."""
    value = value.strip()
    if value == "":
        return None
    if _INTEGER.fullmatch(value):
        return int(value)
    if _DECIMAL.fullmatch(value):
        number = float(value)
        return number if math.isfinite(number) else value
    return value


# --- Bulk insert -----------------------------------------------------------------------------
