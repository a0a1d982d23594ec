"""Request and response shapes of the osm app (`XCreate / XUpdate / XRead / XPage`)."""

from __future__ import annotations

from typing import Any, Literal

import shapely
from pydantic import ConfigDict, Field, field_validator, model_validator
from shapely.geometry.base import BaseGeometry

from worldbase.core.schemas import InputSchema, Schema, UTCDateTime
from worldbase.geo.geometry import parse_geojson_geometry, to_geojson

OSMType = Literal["node", "way", "relation"]
SourceType = Literal["rest", "websocket", "file", "replication", "overpass"]

_OBJECT_EXAMPLE: dict[str, Any] = {
    "id": "6f1c2a9e-3b7d-4e21-9a55-0c8e7d1f2b3a",
    "osm_id": "123456",
    "type": "node",
    "tags": {"amenity": "cafe", "name": "Kaffeehaus"},
    "geom": {"type": "Point", "coordinates": [13.4050, 52.5200]},
    "refs": None,
    "source_id": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f",
    "version": 3,
    "timestamp": "2025-01-01T12:00:00Z",
    "changeset": 98765,
    "user": "mapper",
    "uid": 42,
    "deleted": False,
    "created_at": "2025-01-01T12:00:01Z",
    "updated_at": "2025-01-02T08:30:00Z",
}


def _geojson(value: Any) -> Any:
    return to_geojson(value) if isinstance(value, BaseGeometry) else value


class OSMObjectRead(Schema):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_OBJECT_EXAMPLE]}
    )

    id: str
    osm_id: str
    type: OSMType
    tags: dict[str, str]
    geom: dict[str, Any] | None = Field(description="GeoJSON geometry (EPSG:4326)")
    refs: list[Any] | None = Field(description="Way node ids or relation members")
    source_id: str | None
    version: int
    timestamp: UTCDateTime | None
    changeset: int | None
    user: str | None
    uid: int | None
    deleted: bool
    created_at: UTCDateTime
    updated_at: UTCDateTime

    _geom = field_validator("geom", mode="before")(_geojson)


_GEOM_DESCRIPTION = (
    "WKT (`POINT(13.405 52.52)`; an EWKT `SRID=4326;` prefix is allowed) or a GeoJSON "
    "geometry, as an object or as text, in EPSG:4326. A node's is a Point, a way's a "
    "LineString or Polygon."
)
GeometryInput = str | dict[str, Any]


def _osm_id_text(value: Any) -> Any:
    # The seed's osm_id is a string; a JSON number is what many clients send.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class OSMObjectCreate(InputSchema):
    """The seed's `OSMObjectCreate`: written as a push from the source `source_id`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "osm_id": "123456",
                    "type": "node",
                    "tags": {"highway": "traffic_signals"},
                    "geom": "POINT(13.405 52.52)",
                    "source_id": _OBJECT_EXAMPLE["source_id"],
                },
                {
                    "osm_id": "42",
                    "type": "way",
                    "tags": {"highway": "path"},
                    "geom": {"type": "LineString", "coordinates": [[13.40, 52.52], [13.41, 52.53]]},
                    "source_id": _OBJECT_EXAMPLE["source_id"],
                },
            ]
        },
    )

    osm_id: str = Field(
        min_length=1, max_length=20, pattern="^-?[0-9]+$", description="The OSM id (text or number)"
    )
    type: OSMType
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)
    geom: GeometryInput = Field(description=_GEOM_DESCRIPTION)
    source_id: str = Field(
        max_length=36, description="The data source it comes from (its token may write it)"
    )

    _osm_id = field_validator("osm_id", mode="before")(_osm_id_text)


class OSMObjectUpdate(InputSchema):
    """The seed's `OSMObjectUpdate`: a field left out (or null) keeps its value."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"tags": {"highway": "traffic_signals", "crossing": "marked"}},
                {"geom": "POINT(13.4051 52.5201)"},
            ]
        },
    )

    tags: dict[str, str] | None = Field(
        default=None, max_length=1000, description="All the tags (they replace the current ones)"
    )
    geom: GeometryInput | None = Field(default=None, description=_GEOM_DESCRIPTION)


class HistoryRead(Schema):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "1a2b3c4d-0000-4000-8000-000000000001",
                    "object_id": _OBJECT_EXAMPLE["id"],
                    "action": "modify",
                    "version": 3,
                    "tags": {"amenity": "cafe"},
                    "geom": {"type": "Point", "coordinates": [13.405, 52.52]},
                    "timestamp": "2025-01-01T12:00:00Z",
                    "changeset": 98765,
                    "user": "mapper",
                    "source_id": None,
                    "recorded_at": "2025-01-01T12:00:01Z",
                }
            ]
        },
    )

    id: str
    object_id: str
    action: Literal["create", "modify", "delete"]
    version: int
    tags: dict[str, str]
    geom: dict[str, Any] | None
    timestamp: UTCDateTime | None
    changeset: int | None
    user: str | None
    source_id: str | None
    recorded_at: UTCDateTime

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, value: Any) -> Any:
        wkb = getattr(value, "geom_wkb", None)
        if hasattr(value, "geom_wkb"):
            names = ("id", "object_id", "action", "version", "tags", "timestamp", "changeset")
            data = {name: getattr(value, name) for name in names}
            data.update(user=value.user, source_id=value.source_id, recorded_at=value.recorded_at)
            data["geom"] = None if wkb is None else to_geojson(shapely.from_wkb(wkb))
            return data
        return value


class HistoryPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "total": 0, "limit": 100, "offset": 0}]}
    )

    items: list[HistoryRead]
    total: int
    limit: int
    offset: int


# --- data sources --------------------------------------------------------------------------------

_SOURCE_EXAMPLE: dict[str, Any] = {
    "id": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f",
    "name": "Berlin cafes",
    "description": "Overpass query, every 10 minutes",
    "type": "overpass",
    "connection_info": {
        "url": "https://overpass-api.de/api/interpreter",
        "query": "[out:json];node[amenity=cafe](52.3,13.0,52.7,13.8);out meta;",
        "interval_seconds": 600,
    },
    "is_active": True,
    "area": None,
    "tag_filter": ["amenity=cafe"],
    "sequence_number": None,
    "last_polled_at": None,
    "last_ingest_at": None,
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-01T12:00:00Z",
}


def _check_area(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    geom = parse_geojson_geometry(value)
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise ValueError("area must be a GeoJSON Polygon or MultiPolygon")
    return to_geojson(geom)


def _check_tag_filter(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    for item in value:
        if not item or not item.partition("=")[0] or len(item) > 511:
            raise ValueError("tag filters are 'key' or 'key=value'")
    return value


class DataSourceCreate(InputSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Berlin cafes",
                    "description": "Overpass query, every 10 minutes",
                    "type": "overpass",
                    "connection_info": _SOURCE_EXAMPLE["connection_info"],
                    "tag_filter": ["amenity=cafe"],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    type: SourceType = "rest"
    connection_info: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True
    area: dict[str, Any] | None = Field(default=None, description="GeoJSON (Multi)Polygon")
    tag_filter: list[str] | None = Field(default=None, max_length=100)

    _area = field_validator("area")(_check_area)
    _tags = field_validator("tag_filter")(_check_tag_filter)


class DataSourceUpdate(InputSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"description": "now hourly", "tag_filter": None}]},
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    connection_info: dict[str, Any] | None = None
    area: dict[str, Any] | None = None
    tag_filter: list[str] | None = Field(default=None, max_length=100)

    _area = field_validator("area")(_check_area)
    _tags = field_validator("tag_filter")(_check_tag_filter)


class DataSourceRead(Schema):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_SOURCE_EXAMPLE]}
    )

    id: str
    name: str
    description: str | None
    type: SourceType
    connection_info: dict[str, Any]
    is_active: bool
    area: dict[str, Any] | None
    tag_filter: list[str] | None
    sequence_number: int | None
    last_polled_at: UTCDateTime | None
    last_ingest_at: UTCDateTime | None
    created_at: UTCDateTime
    updated_at: UTCDateTime


class DataSourceCreated(DataSourceRead):
    """The source and its push token: shown this once (only its hash is stored)."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{**_SOURCE_EXAMPLE, "token": "wbsrc_3q2+7w..."}]},
    )

    token: str


class DataSourcePage(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_SOURCE_EXAMPLE], "total": 1, "limit": 100, "offset": 0}]
        }
    )

    items: list[DataSourceRead]
    total: int
    limit: int
    offset: int


# --- ingestion, admin ------------------------------------------------------------------------

INGEST_EXAMPLES: list[Any] = [
    {
        "elements": [
            {
                "type": "node",
                "id": 1,
                "lat": 52.52,
                "lon": 13.405,
                "version": 1,
                "tags": {"amenity": "cafe"},
            },
            {"type": "way", "id": 10, "version": 1, "nodes": [1, 2], "tags": {"highway": "path"}},
        ]
    },
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [13.405, 52.52]},
                "properties": {
                    "osm_type": "node",
                    "osm_id": 1,
                    "version": 2,
                    "tags": {"amenity": "cafe"},
                },
            }
        ],
    },
]


class IngestError(Schema):
    index: int | None
    type: str | None
    id: str | None
    reason: str


class IngestResult(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "received": 3,
                    "accepted": 2,
                    "created": 1,
                    "modified": 1,
                    "deleted": 0,
                    "unchanged": 0,
                    "filtered": 0,
                    "rejected": 1,
                    "reshaped": 0,
                    "errors": [
                        {
                            "index": 2,
                            "type": "node",
                            "id": "7",
                            "reason": "tag 'name' is not a string",
                        }
                    ],
                }
            ]
        }
    )

    received: int
    accepted: int
    created: int
    modified: int
    deleted: int
    unchanged: int
    filtered: int = Field(description="Outside the source's area or tag filter")
    rejected: int
    reshaped: int = Field(
        default=0, description="Stored ways whose geometry followed a moved node of this batch"
    )
    errors: list[IngestError] = Field(description="The first 100 rejected elements")


class ValidationLogRead(Schema):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "9e8d7c6b-0000-4000-8000-000000000002",
                    "source_id": _SOURCE_EXAMPLE["id"],
                    "channel": "rest",
                    "osm_type": "node",
                    "osm_id": "7",
                    "reason": "latitude 95 out of range [-90, 90]",
                    "payload": {"type": "node", "id": 7, "lat": 95, "lon": 0},
                    "created_at": "2025-01-01T12:00:00Z",
                }
            ]
        },
    )

    id: str
    source_id: str | None
    channel: str
    osm_type: str | None
    osm_id: str | None
    reason: str
    payload: Any
    created_at: UTCDateTime


class ValidationLogPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "total": 0, "limit": 100, "offset": 0}]}
    )

    items: list[ValidationLogRead]
    total: int
    limit: int
    offset: int


class StatsRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "objects": {"node": 1200, "way": 80, "relation": 3},
                    "deleted_objects": 4,
                    "history_entries": 1500,
                    "data_sources": 2,
                    "active_data_sources": 1,
                    "validation_log_entries": 7,
                    "last_ingest_at": "2025-01-02T08:30:00Z",
                }
            ]
        }
    )

    objects: dict[str, int]
    deleted_objects: int
    history_entries: int = Field(
        description="Stored history rows; a node bulk-imported from a file and unchanged "
        "since has none (its object row is its only version)"
    )
    data_sources: int
    active_data_sources: int
    validation_log_entries: int
    last_ingest_at: UTCDateTime | None
