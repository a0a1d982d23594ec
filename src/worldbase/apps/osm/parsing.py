"""Input formats -> `Element`s: Overpass-style OSM JSON and GeoJSON FeatureCollections.

Parsing is per element: a bad element becomes a `Rejected` (with the reason and the raw
input, for the validation log) and the others go on. Only a payload that is not one of
the two formats at all raises `BadInput`. An element with more than `max_vertices`
positions (WORLDBASE_MAX_FEATURE_VERTICES: a way's nodes or geometry, a feature's
coordinates) is a bad element, refused before its positions are read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import shapely
import shapely.errors
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from worldbase.core.errors import BadInput
from worldbase.geo.geometry import (
    DEFAULT_MAX_FEATURE_VERTICES,
    parse_geojson_geometry,
    to_geojson,
)

OSM_TYPES = ("node", "way", "relation")
MAX_TAG_LENGTH = 255  # OSM's own limit for keys and values
MAX_PAYLOAD_CHARS = 4000  # raw input kept in the validation log
VERTEX_LIMIT = "WORLDBASE_MAX_FEATURE_VERTICES"  # the setting behind `max_vertices`
# Closed ways with these keys are areas (a simplified version of OSM's area rules).
AREA_KEYS = frozenset(
    {"building", "landuse", "amenity", "leisure", "natural", "area", "shop", "place", "water"}
)


class Invalid(Exception):
    """One element is invalid; the message is the reason logged."""


@dataclass
class Element:
    type: str
    osm_id: str
    version: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    geom: BaseGeometry | None = None
    refs: list[Any] | None = None  # way node ids / relation members
    timestamp: datetime | None = None
    changeset: int | None = None
    user: str | None = None
    uid: int | None = None
    deleted: bool = False


@dataclass
class Rejected:
    reason: str
    payload: Any
    osm_type: str | None = None
    osm_id: str | None = None
    index: int | None = None


def truncate_payload(raw: Any) -> Any:
    try:
        text = json.dumps(raw, default=str)
    except (TypeError, ValueError):
        return {"repr": repr(raw)[:MAX_PAYLOAD_CHARS]}
    if len(text) <= MAX_PAYLOAD_CHARS:
        return raw
    return {"truncated": text[:MAX_PAYLOAD_CHARS]}


# --- field validators --------------------------------------------------------------------------


def _int(value: Any, name: str, *, positive: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid(f"'{name}' must be an integer")
    try:
        number = int(value)
    except ValueError:
        raise Invalid(f"'{name}' must be an integer") from None
    if positive and number < 1:
        raise Invalid(f"'{name}' must be positive")
    if abs(number) >= 2**63:
        raise Invalid(f"'{name}' is out of range")
    return number


def osm_type(value: Any) -> str:
    if value not in OSM_TYPES:
        raise Invalid("'type' must be node, way or relation")
    return str(value)


def tags_of(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("'tags' must be an object")
    for key, tag in value.items():
        if not isinstance(tag, str):
            raise Invalid(f"tag {key!r} is not a string")
        if not key or len(key) > MAX_TAG_LENGTH or len(tag) > MAX_TAG_LENGTH:
            raise Invalid(f"tag {key!r}: keys and values are 1..{MAX_TAG_LENGTH} characters")
    return dict(value)


def coordinate(lon: Any, lat: Any) -> tuple[float, float]:
    for value in (lon, lat):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid("coordinates must be numbers")
        if not math.isfinite(value):
            raise Invalid("coordinates must be finite")
    if not -180.0 <= lon <= 180.0:
        raise Invalid(f"longitude {lon} out of range [-180, 180]")
    if not -90.0 <= lat <= 90.0:
        raise Invalid(f"latitude {lat} out of range [-90, 90]")
    return float(lon), float(lat)


def check_positions(count: int, max_vertices: int, what: str) -> None:
    """`Invalid` naming the setting when `what` has more than `max_vertices` positions."""
    if count > max_vertices:
        raise Invalid(f"{what} has more than {max_vertices} positions ({VERTEX_LIMIT})")


def timestamp_of(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("'timestamp' must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid("'timestamp' must be an ISO 8601 string") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def is_area(coords: list[tuple[float, float]], tags: dict[str, str]) -> bool:
    closed = len(coords) >= 4 and coords[0] == coords[-1]
    if not closed or tags.get("area") == "no":
        return False
    return bool(AREA_KEYS & tags.keys())


def way_geometry(coords: list[tuple[float, float]], tags: dict[str, str]) -> BaseGeometry:
    if len(coords) < 2:
        raise Invalid("a way needs at least 2 nodes")
    if is_area(coords, tags):
        polygon = Polygon(coords)
        if polygon.is_valid:
            return polygon
    return LineString(coords)


def _metadata(raw: dict[str, Any], element: Element) -> Element:
    if raw.get("version") is not None:
        element.version = _int(raw["version"], "version", positive=True)
    element.timestamp = timestamp_of(raw.get("timestamp"))
    if raw.get("changeset") is not None:
        element.changeset = _int(raw["changeset"], "changeset")
    if raw.get("user") is not None:
        if not isinstance(raw["user"], str):
            raise Invalid("'user' must be a string")
        element.user = raw["user"][:255]
    if raw.get("uid") is not None:
        element.uid = _int(raw["uid"], "uid")
    visible = raw.get("visible", True)
    element.deleted = visible is False or raw.get("action") == "delete"
    return element


# --- Overpass JSON -------------------------------------------------------------------------------


def parse_overpass_element(
    raw: Any, *, max_vertices: int = DEFAULT_MAX_FEATURE_VERTICES
) -> Element:
    if not isinstance(raw, dict):
        raise Invalid("an element must be an object")
    element = Element(type=osm_type(raw.get("type")), osm_id=str(_int(raw.get("id"), "id")))
    element.tags = tags_of(raw.get("tags"))
    _metadata(raw, element)
    if element.type == "node":
        if element.deleted and raw.get("lat") is None:
            return element
        element.geom = Point(coordinate(raw.get("lon"), raw.get("lat")))
    elif element.type == "way":
        nodes = raw.get("nodes")
        if nodes is not None:
            if not isinstance(nodes, list):
                raise Invalid("'nodes' must be an array of node ids")
            check_positions(len(nodes), max_vertices, f"way {element.osm_id}")
            element.refs = [_int(n, "nodes[]") for n in nodes]
        geometry = raw.get("geometry")
        if geometry is not None:
            if not isinstance(geometry, list) or not all(isinstance(p, dict) for p in geometry):
                raise Invalid("'geometry' must be an array of {lat, lon}")
            check_positions(len(geometry), max_vertices, f"way {element.osm_id}")
            coords = [coordinate(p.get("lon"), p.get("lat")) for p in geometry]
            element.geom = way_geometry(coords, element.tags)
        elif nodes is None and not element.deleted:
            raise Invalid("a way needs 'nodes' or 'geometry'")
    else:
        members = raw.get("members", [])
        if not isinstance(members, list):
            raise Invalid("'members' must be an array")
        refs = []
        for member in members:
            if not isinstance(member, dict):
                raise Invalid("a relation member must be an object")
            refs.append(
                {
                    "type": osm_type(member.get("type")),
                    "ref": _int(member.get("ref"), "members[].ref"),
                    "role": str(member.get("role", ""))[:255],
                }
            )
        element.refs = refs
    return element


def _rejected(exc: Exception, raw: Any, index: int) -> Rejected:
    reason = exc.message if isinstance(exc, BadInput) else str(exc)
    if isinstance(exc, BadInput) and isinstance(exc.detail, dict) and exc.detail.get("reason"):
        reason = f"{exc.detail['reason']} at {exc.detail.get('path') or 'geometry'}"
    typ = raw.get("type") if isinstance(raw, dict) else None
    ident = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(raw, dict) and raw.get("type") == "Feature":
        props = raw.get("properties")
        props = props if isinstance(props, dict) else {}
        typ, ident = props.get("osm_type"), props.get("osm_id")
    return Rejected(
        reason=reason,
        payload=truncate_payload(raw),
        osm_type=typ if typ in OSM_TYPES else None,
        osm_id=None if ident is None else str(ident)[:20],
        index=index,
    )


# --- GeoJSON -------------------------------------------------------------------------------------


def _feature_identity(feature: dict[str, Any], props: dict[str, Any]) -> tuple[str, str]:
    typ, ident = props.get("osm_type"), props.get("osm_id")
    if typ is None or ident is None:
        # overpass-turbo / osmtogeojson exports: "id": "node/123" or "@id".
        ref = feature.get("id") or props.get("@id") or props.get("id")
        if isinstance(ref, str) and "/" in ref:
            typ, ident = ref.split("/", 1)
    if typ is None or ident is None:
        raise Invalid("a feature needs properties 'osm_type' and 'osm_id'")
    return osm_type(typ), str(_int(ident, "osm_id"))


def parse_geojson_feature(raw: Any, *, max_vertices: int = DEFAULT_MAX_FEATURE_VERTICES) -> Element:
    if not isinstance(raw, dict) or raw.get("type") != "Feature":
        raise Invalid("expected a GeoJSON Feature")
    props = raw.get("properties") or {}
    if not isinstance(props, dict):
        raise Invalid("'properties' must be an object")
    typ, ident = _feature_identity(raw, props)
    element = Element(type=typ, osm_id=ident)
    if "tags" in props:
        element.tags = tags_of(props["tags"])
    else:  # flat exports carry tags as the other properties
        reserved = {"osm_type", "osm_id", "version", "timestamp", "changeset", "user", "uid", "id"}
        element.tags = tags_of(
            {k: v for k, v in props.items() if k not in reserved and not k.startswith("@")}
        )
    _metadata(props, element)
    if raw.get("geometry") is None:
        if not element.deleted:
            raise Invalid("feature has no geometry")
        return element
    element.geom = element_geometry(
        element.type, raw["geometry"], max_vertices=max_vertices, limit_name=VERTEX_LIMIT
    )
    return element


def element_geometry(
    typ: str,
    raw: Any,
    *,
    max_vertices: int = DEFAULT_MAX_FEATURE_VERTICES,
    limit_name: str = VERTEX_LIMIT,
) -> BaseGeometry:
    """A validated GeoJSON geometry of the shape an element of `typ` can have."""
    geom = parse_geojson_geometry(raw, max_vertices=max_vertices, limit_name=limit_name)
    if typ == "node" and geom.geom_type != "Point":
        raise Invalid("a node's geometry must be a Point")
    if typ == "way" and geom.geom_type not in ("LineString", "Polygon"):
        raise Invalid("a way's geometry must be a LineString or a Polygon")
    return geom


_SRID = re.compile(r"\s*SRID=([0-9]+)\s*;", re.IGNORECASE)


def geometry_input(value: Any) -> Any:
    """A GeoJSON geometry from what a client may send as an object's `geom`: a GeoJSON
    object, GeoJSON as text, or WKT (EWKT's `SRID=4326;` prefix allowed). Checked further by
    `element_geometry`, like any GeoJSON."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            raise Invalid("'geom' is not valid GeoJSON text") from None
    srid = _SRID.match(text)
    if srid is not None:
        if srid.group(1) != "4326":
            raise Invalid(f"'geom': SRID {srid.group(1)} is not accepted (only 4326, WGS 84)")
        text = text[srid.end() :]
    try:
        geom = shapely.from_wkt(text)
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        raise Invalid(f"'geom' is neither WKT nor GeoJSON: {str(exc)[:200]}") from None
    if geom is None or geom.is_empty:
        raise Invalid("'geom' is empty")
    return to_geojson(geom)


def osm_id_of(value: Any) -> str:
    """An OSM id (a number, possibly given as text) in its canonical text form."""
    return str(_int(value, "osm_id"))


def parse_payload(
    payload: Any, *, max_vertices: int = DEFAULT_MAX_FEATURE_VERTICES
) -> tuple[list[tuple[int, Element]], list[Rejected]]:
    """Either format, recognised by its shape; `max_vertices` positions per element. Each
    element is parsed on its own: the good ones with their index, the rest rejected."""
    parse: Callable[..., Element]
    if not isinstance(payload, dict):
        raise BadInput("Expected OSM JSON ({'elements': [...]}) or a GeoJSON FeatureCollection")
    if payload.get("type") == "FeatureCollection":
        key, parse = "features", parse_geojson_feature
        missing = "A FeatureCollection needs a 'features' array"
    elif "elements" in payload:
        key, parse = "elements", parse_overpass_element
        missing = "OSM JSON needs an 'elements' array"
    else:
        raise BadInput("Expected OSM JSON ({'elements': [...]}) or a GeoJSON FeatureCollection")
    items = payload.get(key)
    if not isinstance(items, list):
        raise BadInput(missing, detail={"path": key})
    good: list[tuple[int, Element]] = []
    bad: list[Rejected] = []
    for index, raw in enumerate(items):
        try:
            good.append((index, parse(raw, max_vertices=max_vertices)))
        except (Invalid, BadInput) as exc:
            bad.append(_rejected(exc, raw, index))
    return good, bad
