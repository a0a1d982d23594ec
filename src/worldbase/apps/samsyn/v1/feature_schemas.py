"""SamSyn's feature shapes (`/api/v1/layers/{layer_id}/features`): a feature is its GeoJSON
geometry, its properties and an optional `feature_type`, with ids and timestamps."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field
from pydantic.config import JsonDict

from worldbase.apps.samsyn.models import LayerFeature
from worldbase.core.schemas import InputSchema, Schema, UTCDateTime, examples
from worldbase.geo.geometry import to_geojson

FeatureType = str | None
_TYPE = Field(default=None, max_length=100, description="An optional category")
_AT = "2025-01-01T12:00:00Z"
_POLYGON: JsonDict = {
    "type": "Polygon",
    "coordinates": [[[2.5, 54.5], [3.5, 54.5], [3.5, 55.5], [2.5, 55.5], [2.5, 54.5]]],
}
_ID = "6f1c2a5e-3b7d-4e8f-9a0b-1c2d3e4f5a6b"
_CREATE: JsonDict = {
    "geometry": _POLYGON,
    "properties": {"name": "Dogger Bank"},
    "feature_type": "protected_area",
}


class V1FeatureCreate(InputSchema):
    geometry: dict[str, Any] = Field(description="A GeoJSON geometry object")
    properties: dict[str, Any] = Field(default_factory=dict)
    feature_type: FeatureType = _TYPE

    model_config = examples(_CREATE, forbid=True)


class V1FeatureUpdate(InputSchema):
    """Only the fields sent change (`properties` replaces the whole object)."""

    geometry: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    feature_type: FeatureType = _TYPE

    model_config = examples(
        {"properties": {"name": "Dogger Bank", "status": "designated"}}, forbid=True
    )


class V1BulkFeatureCreate(InputSchema):
    """A GeoJSON FeatureCollection, written all or nothing; `feature_type` applies to all."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]] = Field(min_length=1)
    feature_type: FeatureType = _TYPE

    model_config = examples(
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": _POLYGON, "properties": {"name": "Dogger Bank"}}
            ],
            "feature_type": "protected_area",
        },
        forbid=True,
    )


class FeatureResponse(Schema):
    id: uuid.UUID
    layer_id: uuid.UUID
    geometry: dict[str, Any]
    properties: dict[str, Any]
    feature_type: FeatureType
    display_order: int
    created_at: UTCDateTime
    updated_at: UTCDateTime

    model_config = examples(
        {
            "id": _ID,
            "layer_id": "0b7e9a1c-2d3f-4a5b-8c6d-7e8f9a0b1c2d",
            "geometry": _POLYGON,
            "properties": {"name": "Dogger Bank"},
            "feature_type": "protected_area",
            "display_order": 0,
            "created_at": _AT,
            "updated_at": _AT,
        }
    )


class BulkFeatureResponse(Schema):
    success: bool
    created_count: int
    failed_count: int = 0
    feature_ids: list[uuid.UUID]
    errors: list[dict[str, Any]] = Field(
        default_factory=list, description="Always empty: an invalid feature fails the request"
    )

    model_config = examples(
        {
            "success": True,
            "created_count": 1,
            "failed_count": 0,
            "feature_ids": [_ID],
            "errors": [],
        }
    )


class FeatureDeleted(Schema):
    status: str
    message: str

    model_config = examples({"status": "success", "message": "Feature deleted"})


def feature_response(feature: LayerFeature) -> FeatureResponse:
    return FeatureResponse(
        id=feature.id,
        layer_id=feature.layer_id,
        geometry=to_geojson(feature.geometry),
        properties=feature.properties or {},
        feature_type=feature.feature_type,
        display_order=feature.display_order,
        created_at=feature.created_at,
        updated_at=feature.updated_at,
    )
