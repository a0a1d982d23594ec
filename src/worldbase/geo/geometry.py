"""GeoJSON (RFC 7946) in and out: strict validation with a precise reason, shapely inside.

Every rejection is a `BadInput` (422) whose `detail` is `{"reason": ..., "path": ...}`, the
path pointing at the offending member (`coordinates[0][3]`, `features[2].geometry`).
Positions may carry an altitude; it is accepted and dropped, the columns are 2D.
Polygons in either winding are accepted and normalised to the right-hand rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import shapely
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
    mapping,
)
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from worldbase.core.errors import BadInput

DEFAULT_MAX_VERTICES = 1_000_000
# Positions one feature may have (WORLDBASE_MAX_FEATURE_VERTICES): what a 1e6-vertex line
# costs to validate, store and serialise back is seconds of CPU per request and per read.
DEFAULT_MAX_FEATURE_VERTICES = 100_000
MAX_COLLECTION_DEPTH = 4  # RFC 7946 discourages nested collections; bound the recursion.

Position = tuple[float, float]


class ParsedFeature(NamedTuple):
    geometry: BaseGeometry | None
    properties: dict[str, Any]
    id: str | int | float | None


def _fail(reason: str, path: str, what: str = "GeoJSON geometry") -> BadInput:
    where = f" at {path}" if path else ""
    return BadInput(f"Invalid {what}{where}: {reason}", detail={"reason": reason, "path": path})


class _Parser:
    def __init__(self, max_vertices: int, limit_name: str = ""):
        self.max_vertices = max_vertices
        self.limit_name = limit_name  # the setting to name when the limit is hit
        self.vertices = 0

    def position(self, value: Any, path: str) -> Position:
        if not isinstance(value, list | tuple) or not 2 <= len(value) <= 3:
            raise _fail("a position must be an array of 2 or 3 numbers", path)
        for i, number in enumerate(value):
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise _fail("coordinates must be numbers", f"{path}[{i}]")
            if not math.isfinite(number):
                raise _fail("coordinates must be finite numbers", f"{path}[{i}]")
        lon, lat = float(value[0]), float(value[1])
        if not -180.0 <= lon <= 180.0:
            raise _fail(f"longitude {lon} is outside [-180, 180]", f"{path}[0]")
        if not -90.0 <= lat <= 90.0:
            raise _fail(f"latitude {lat} is outside [-90, 90]", f"{path}[1]")
        self.vertices += 1
        if self.vertices > self.max_vertices:
            named = f" ({self.limit_name})" if self.limit_name else ""
            error = _fail(f"more than {self.max_vertices} positions{named}", path)
            error.detail |= {"limit": self.max_vertices, "setting": self.limit_name or None}
            raise error
        return lon, lat

    def array(self, value: Any, path: str, what: str) -> Sequence[Any]:
        if not isinstance(value, list | tuple):
            raise _fail(f"{what} must be an array", path)
        return value

    def positions(self, value: Any, path: str, minimum: int, what: str) -> list[Position]:
        items = self.array(value, path, what)
        if len(items) < minimum:
            raise _fail(f"{what} needs at least {minimum} positions, got {len(items)}", path)
        return [self.position(p, f"{path}[{i}]") for i, p in enumerate(items)]

    def ring(self, value: Any, path: str) -> list[Position]:
        ring = self.positions(value, path, 4, "a linear ring")
        # Checked here because shapely silently closes an open ring.
        if ring[0] != ring[-1]:
            raise _fail("linear ring is not closed (first and last positions differ)", path)
        return ring

    def polygon(self, value: Any, path: str) -> Polygon:
        rings = self.array(value, path, "polygon coordinates")
        if not rings:
            raise _fail("polygon has no rings (empty geometries are not accepted)", path)
        parsed = [self.ring(r, f"{path}[{i}]") for i, r in enumerate(rings)]
        return Polygon(parsed[0], parsed[1:])

    def geometry(self, obj: Any, path: str, depth: int = 0) -> BaseGeometry:
        if not isinstance(obj, Mapping):
            raise _fail("a geometry must be a JSON object", path)
        kind = obj.get("type")
        if kind is None:
            raise _fail("missing 'type'", path)
        if kind in ("Feature", "FeatureCollection"):
            raise _fail(f"expected a geometry, got a {kind}", path)
        sub = f"{path}.coordinates" if path else "coordinates"
        if kind == "GeometryCollection":
            return self.collection(obj, path, depth)
        if kind not in _BUILDERS:
            raise _fail(f"unknown geometry type {kind!r}", f"{path}.type" if path else "type")
        if "coordinates" not in obj:
            raise _fail("missing 'coordinates'", path)
        return _BUILDERS[kind](self, obj["coordinates"], sub)

    def collection(self, obj: Mapping[str, Any], path: str, depth: int) -> BaseGeometry:
        if depth >= MAX_COLLECTION_DEPTH:
            raise _fail("geometry collections are nested too deeply", path)
        sub = f"{path}.geometries" if path else "geometries"
        members = self.array(obj.get("geometries"), sub, "'geometries'")
        if not members:
            raise _fail("empty geometry collection", sub)
        return GeometryCollection(
            [self.geometry(m, f"{sub}[{i}]", depth + 1) for i, m in enumerate(members)]
        )


def _point(p: _Parser, coords: Any, path: str) -> BaseGeometry:
    return Point(p.position(coords, path))


def _multipoint(p: _Parser, coords: Any, path: str) -> BaseGeometry:
    return MultiPoint(p.positions(coords, path, 1, "a MultiPoint"))


def _linestring(p: _Parser, coords: Any, path: str) -> BaseGeometry:
    return LineString(p.positions(coords, path, 2, "a LineString"))


def _multilinestring(p: _Parser, coords: Any, path: str) -> BaseGeometry:
    lines = p.array(coords, path, "MultiLineString coordinates")
    if not lines:
        raise _fail("empty MultiLineString", path)
    return MultiLineString(
        [p.positions(line, f"{path}[{i}]", 2, "a LineString") for i, line in enumerate(lines)]
    )


def _polygon(p: _Parser, coords: Any, path: str) -> BaseGeometry:
    return p.polygon(coords, path)


def _multipolygon(p: _Parser, coords: Any, path: str) -> BaseGeometry:
    polygons = p.array(coords, path, "MultiPolygon coordinates")
    if not polygons:
        raise _fail("empty MultiPolygon", path)
    return MultiPolygon([p.polygon(poly, f"{path}[{i}]") for i, poly in enumerate(polygons)])


_BUILDERS = {
    "Point": _point,
    "MultiPoint": _multipoint,
    "LineString": _linestring,
    "MultiLineString": _multilinestring,
    "Polygon": _polygon,
    "MultiPolygon": _multipolygon,
}


def normalize(geom: BaseGeometry) -> BaseGeometry:
    """Polygons oriented by the right-hand rule (exterior counter-clockwise, holes clockwise)."""
    if isinstance(geom, Polygon):
        return orient(geom, sign=1.0)
    if isinstance(geom, MultiPolygon):
        return MultiPolygon([orient(g, sign=1.0) for g in geom.geoms])
    if isinstance(geom, GeometryCollection):
        return GeometryCollection([normalize(g) for g in geom.geoms])
    return geom


def parse_geojson_geometry(
    obj: Any, *, max_vertices: int = DEFAULT_MAX_VERTICES, path: str = "", limit_name: str = ""
) -> BaseGeometry:
    """A validated, normalised shapely geometry from a GeoJSON geometry object; more than
    `max_vertices` positions is a 422 naming `limit_name` (the setting behind the limit)."""
    geom = _Parser(max_vertices, limit_name).geometry(obj, path)
    reason = shapely.is_valid_reason(geom)
    if reason != "Valid Geometry":
        # e.g. "Self-intersection[0.5 0.5]", "Ring Self-intersection[...]", "Too few points[...]"
        raise _fail(f"invalid geometry: {reason}", path)
    return normalize(geom)


def _feature_id(value: Any, path: str) -> str | int | float | None:
    if value is None or (isinstance(value, str | int | float) and not isinstance(value, bool)):
        return value
    raise _fail("'id' must be a string or a number", path, "GeoJSON feature")


def parse_feature(
    obj: Any,
    *,
    max_vertices: int = DEFAULT_MAX_VERTICES,
    allow_null_geometry: bool = False,
    path: str = "",
    limit_name: str = "",
) -> ParsedFeature:
    """(geometry, properties, id) of a validated GeoJSON Feature."""
    if not isinstance(obj, Mapping) or obj.get("type") != "Feature":
        raise _fail("expected an object with type 'Feature'", path, "GeoJSON feature")
    geometry_path = f"{path}.geometry" if path else "geometry"
    if "geometry" not in obj:
        raise _fail("must have a 'geometry' field", path, "GeoJSON feature")
    geometry: BaseGeometry | None = None
    if obj["geometry"] is None:
        if not allow_null_geometry:
            raise _fail("feature has no geometry", geometry_path, "GeoJSON feature")
    else:
        geometry = parse_geojson_geometry(
            obj["geometry"], max_vertices=max_vertices, path=geometry_path, limit_name=limit_name
        )
    properties = obj.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, Mapping):
        where = f"{path}.properties" if path else "properties"
        raise _fail("'properties' must be an object or null", where, "GeoJSON feature")
    return ParsedFeature(geometry, dict(properties), _feature_id(obj.get("id"), path))


def parse_feature_collection(
    obj: Any,
    *,
    max_vertices: int = DEFAULT_MAX_VERTICES,
    max_features: int | None = None,
    allow_null_geometry: bool = False,
    max_feature_vertices: int | None = None,
    limit_names: tuple[str, str] = ("", ""),
) -> list[ParsedFeature]:
    """Every feature of a validated FeatureCollection; `max_vertices` bounds the whole and
    `max_feature_vertices` each feature. `limit_names` names the settings behind the two
    (whole, per feature) in the 422."""
    if not isinstance(obj, Mapping) or obj.get("type") != "FeatureCollection":
        raise _fail("expected an object with type 'FeatureCollection'", "", "GeoJSON")
    features = obj.get("features")
    if not isinstance(features, list | tuple):
        raise _fail("'features' must be an array", "features", "GeoJSON")
    if max_features is not None and len(features) > max_features:
        raise _fail(f"more than {max_features} features", "features", "GeoJSON")
    parsed: list[ParsedFeature] = []
    budget = max_vertices
    whole_name, feature_name = limit_names
    for i, feature in enumerate(features):
        per_feature = budget if max_feature_vertices is None else min(budget, max_feature_vertices)
        item = parse_feature(
            feature,
            max_vertices=per_feature,
            allow_null_geometry=allow_null_geometry,
            path=f"features[{i}]",
            limit_name=whole_name if per_feature == budget else feature_name,
        )
        if item.geometry is not None:
            budget -= int(shapely.get_num_coordinates(item.geometry))
        parsed.append(item)
    return parsed


def _listify(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_listify(v) for v in value]
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    return value


def to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """A GeoJSON geometry object (plain lists, ready for any JSON encoder)."""
    result: dict[str, Any] = _listify(mapping(geom))
    return result


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """`"minx,miny,maxx,maxy"` in degrees, validated."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise _fail("bbox must be 4 comma-separated numbers: minx,miny,maxx,maxy", "bbox", "bbox")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise _fail("bbox values must be numbers", "bbox", "bbox") from None
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise _fail("bbox values must be finite", "bbox", "bbox")
    if not (-180.0 <= minx <= 180.0 and -180.0 <= maxx <= 180.0):
        raise _fail("bbox longitudes must be within [-180, 180]", "bbox", "bbox")
    if not (-90.0 <= miny <= 90.0 and -90.0 <= maxy <= 90.0):
        raise _fail("bbox latitudes must be within [-90, 90]", "bbox", "bbox")
    if minx > maxx or miny > maxy:
        raise _fail("bbox minimum exceeds maximum", "bbox", "bbox")
    return minx, miny, maxx, maxy
