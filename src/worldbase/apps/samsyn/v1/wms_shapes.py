"""SamSyn's WMS shapes: parsed capabilities, GetFeatureInfo answers, the server registry."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from worldbase.core.schemas import InputSchema, Schema, UTCDateTime, WebUrl, examples

_ID = "8d0f6c2a-1b3e-4f5a-9c7d-2e4f6a8b0c1d"
_LAYER: JsonDict = {
    "name": "sst",
    "title": "Sea surface temperature",
    "abstract": "Daily mean sea surface temperature",
    "queryable": True,
    "dimensions": [
        {"name": "time", "extent": "2024-01-01/2024-12-31/P1D", "units": "ISO8601", "default": None}
    ],
    "styles": [
        {
            "name": "boxfill/rainbow",
            "title": "Rainbow",
            "legendUrl": "https://wms.example.org/l.png",
        }
    ],
    "bounds": [-180.0, -90.0, 180.0, 90.0],
    "crs": ["EPSG:3857", "EPSG:4326"],
}
_CAPABILITIES: JsonDict = {
    "version": "1.3.0",
    "service_title": "Ocean WMS",
    "service_abstract": None,
    "service_provider": "Example Marine Institute",
    "service_contact_email": None,
    "service_access_constraints": None,
    "service_fees": None,
    "getmap_formats": ["image/png", "image/jpeg"],
    "getfeatureinfo_formats": ["text/html", "application/json"],
    "layers": [_LAYER],
}
_SERVER: JsonDict = {
    "id": _ID,
    "name": "Ocean WMS",
    "base_url": "https://wms.example.org/wms",
    "description": "Sea state and temperature",
    "version": "1.3.0",
    "service_title": "Ocean WMS",
    "service_provider": "Example Marine Institute",
    "layer_count": 1,
    "cached_at": "2026-12-07T01:00:00Z",
    "created_by": "3f2b6c1e-8a4d-4c3e-9b1a-2d5e6f7a8b9c",
    "created_at": "2026-12-07T01:00:00Z",
}


class WmsDimension(Schema):
    name: str
    extent: str
    units: str | None = None
    default: str | None = None


class WmsStyle(Schema):
    name: str
    title: str | None = None
    legendUrl: str | None = None  # SamSyn's name


class WmsLayerInfo(Schema):
    """A named layer of a WMS (bounds: west, south, east, north in degrees)."""

    name: str
    title: str | None = None
    abstract: str | None = None
    queryable: bool = False
    dimensions: list[WmsDimension] = Field(default_factory=list)
    styles: list[WmsStyle] = Field(default_factory=list)
    bounds: list[float] | None = None
    crs: list[str] = Field(default_factory=list)

    model_config = examples(_LAYER)


class WmsCapabilities(Schema):
    version: str | None
    service_title: str
    service_abstract: str | None = None
    service_provider: str | None = None
    service_contact_email: str | None = None
    service_access_constraints: str | None = None
    service_fees: str | None = None
    getmap_formats: list[str] = Field(default_factory=list)
    getfeatureinfo_formats: list[str] = Field(default_factory=list)
    layers: list[WmsLayerInfo] = Field(default_factory=list)

    model_config = examples(_CAPABILITIES)


class FeatureInfo(Schema):
    """The WMS's answer: its JSON as sent, an HTML table as `features`, else text."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"features": [{"type": "Feature", "properties": {"temperature": "12.5"}}]},
                {"type": "text", "content": "GetFeatureInfo results: value = 12.5"},
            ]
        },
    )


class DiscoveredProperty(Schema):
    name: str
    sampleValue: str | None  # SamSyn's name
    type: str


class DiscoveredProperties(Schema):
    properties: list[DiscoveredProperty]
    message: str
    error: str | None = None

    model_config = examples(
        {
            "properties": [{"name": "temperature", "sampleValue": "12.5", "type": "float"}],
            "message": "Discovered 1 properties",
        }
    )


class WmsServerCreate(InputSchema):
    name: str = Field(min_length=1, max_length=255)
    base_url: WebUrl
    description: str | None = Field(default=None, max_length=10_000)

    model_config = examples(
        {"name": "Ocean WMS", "base_url": "https://wms.example.org/wms"}, forbid=True
    )


class WmsServerUpdate(InputSchema):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)

    model_config = examples({"description": "Sea state and temperature"}, forbid=True)


class WmsServerListResponse(Schema):
    """A saved server without its capabilities."""

    id: uuid.UUID
    name: str
    base_url: str
    description: str | None
    version: str | None
    service_title: str | None
    service_provider: str | None
    layer_count: int
    cached_at: UTCDateTime | None
    created_by: uuid.UUID | None
    created_at: UTCDateTime

    model_config = examples(_SERVER)


class WmsServerResponse(WmsServerListResponse):
    """A saved server with its capabilities as last read."""

    capabilities_cache: dict[str, Any]
    updated_at: UTCDateTime

    model_config = examples(
        _SERVER | {"capabilities_cache": _CAPABILITIES, "updated_at": "2026-12-07T01:00:00Z"}
    )


class WmsServerLayersResponse(Schema):
    server_id: uuid.UUID
    server_name: str
    base_url: str
    version: str | None
    layers: list[WmsLayerInfo]
    cached_at: UTCDateTime | None

    model_config = examples(
        {
            "server_id": _ID,
            "server_name": "Ocean WMS",
            "base_url": "https://wms.example.org/wms",
            "version": "1.3.0",
            "layers": [_LAYER],
            "cached_at": "2026-12-07T01:00:00Z",
        }
    )


class StatusMessage(Schema):
    status: str
    message: str

    model_config = examples({"status": "success", "message": "WMS server deleted"})
