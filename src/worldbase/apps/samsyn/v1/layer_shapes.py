"""SamSyn's layer shapes (`LayerCreate`, `LayerUpdate`, `LayerResponse`) and their
translation from ours: `layer_metadata` is our `meta`, `creator` a `UserResponse`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.models import (
    CreationSource,
    Editable,
    Layer,
    LayerFeature,
    LayerVisibility,
    SourceType,
)
from worldbase.apps.samsyn.v1.shapes import UserResponse, user_response
from worldbase.apps.samsyn.wms import pending
from worldbase.core.models import User
from worldbase.core.schemas import UTCDateTime

# A layer's `features` list shows at most this many (the geometry is in `source_config`
# or the features API; the list is a summary).
FEATURE_SUMMARY_LIMIT = 1000

_ID = "5d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
_AT = "2025-01-01T12:00:00Z"
_DRAWN = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [18.07, 59.33]},
            "properties": {"name": "Buoy"},
        }
    ],
}
_LAYER_BODY: dict[str, Any] = {
    "name": "Planned wind farms",
    "source_type": "vector",
    "description": "Drawn by hand",
    "category": "Energy",
    "editable": "creator-only",
    "is_global": False,
    "visibility": "private",
    "creation_source": "layer_creator",
    "source_config": {"geometryType": "Point", "geojson": _DRAWN},
    "style_config": {"color": "#ff0000"},
    "legend_config": {},
    "layer_metadata": {"author": "Ada"},
}
_USER = {
    "id": _ID,
    "clerk_id": "user_2abc",
    "email": "ada@example.org",
    "username": None,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "profile_image_url": None,
    "created_at": _AT,
    "updated_at": _AT,
}
LAYER_EXAMPLE: dict[str, Any] = _LAYER_BODY | {
    "id": _ID,
    "created_by": _ID,
    "source_config": {"geojson": _DRAWN, "geometryType": "Point", "featureCount": 1},
    "created_at": _AT,
    "updated_at": _AT,
    "creator": _USER,
    "features": [
        {"id": _ID, "geometry_type": "Point", "properties": {"name": "Buoy"}, "created_at": _AT}
    ],
    "map_layers": [],
}

Config = dict[str, Any]
# SamSyn's bodies take the metadata as `layer_metadata` or `metadata`.
_METADATA = AliasChoices("layer_metadata", "metadata")


class LayerCreate(BaseModel):
    """SamSyn's layer body; unknown fields are ignored, as SamSyn's backend does."""

    name: str = Field(min_length=1, max_length=255)
    source_type: SourceType
    description: str | None = Field(default=None, max_length=10_000)
    category: str | None = Field(default=None, max_length=100)
    editable: Editable = Editable.creator_only
    is_global: bool = Field(default=False, description="Administrators only (else 403)")
    visibility: LayerVisibility = LayerVisibility.private
    creation_source: CreationSource = CreationSource.system
    source_config: Config = Field(
        description="Per source type; a vector layer's `geojson` FeatureCollection becomes "
        "its features"
    )
    style_config: Config | None = None
    legend_config: Config | None = None
    layer_metadata: Config | None = Field(default=None, validation_alias=_METADATA)

    model_config = ConfigDict(json_schema_extra={"examples": [_LAYER_BODY]})


class LayerUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    source_type: SourceType | None = None
    description: str | None = Field(default=None, max_length=10_000)
    category: str | None = Field(default=None, max_length=100)
    editable: Editable | None = None
    is_global: bool | None = Field(default=None, description="Administrators only (else 403)")
    visibility: LayerVisibility | None = None
    source_config: Config | None = None
    style_config: Config | None = None
    legend_config: Config | None = None
    layer_metadata: Config | None = Field(default=None, validation_alias=_METADATA)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Wind farms (2030)", "visibility": "public"}]}
    )


def layer_values(body: LayerCreate | LayerUpdate) -> dict[str, Any]:
    """The body as the layers service takes values (`metadata`, no nulls for configs)."""
    values = body.model_dump(exclude_unset=isinstance(body, LayerUpdate))
    if "layer_metadata" in values:
        values["metadata"] = values.pop("layer_metadata")
    if isinstance(body, LayerCreate):
        for key in ("style_config", "legend_config", "metadata"):
            values[key] = values.get(key) or {}
    return values


class LayerFeatureResponse(BaseModel):
    id: uuid.UUID
    geometry_type: str
    properties: dict[str, Any]
    created_at: UTCDateTime


class LayerResponse(BaseModel):
    id: uuid.UUID
    name: str
    source_type: SourceType
    description: str | None
    category: str | None
    created_by: uuid.UUID
    editable: Editable
    is_global: bool
    visibility: LayerVisibility
    creation_source: CreationSource
    source_config: Config
    style_config: Config
    legend_config: Config
    layer_metadata: Config
    created_at: UTCDateTime
    updated_at: UTCDateTime
    features: list[LayerFeatureResponse] = Field(
        default_factory=list,
        description=f"Single-layer answers only, the first {FEATURE_SUMMARY_LIMIT}",
    )
    map_layers: list[dict[str, Any]] = Field(default_factory=list)
    creator: UserResponse | None = None
    warnings: list[str] = Field(
        default_factory=list,
        description="Worldbase's addition: what to know about the configuration, e.g. a WMS "
        "that could not be reached when the layer was saved (its layer names unchecked)",
    )

    model_config = ConfigDict(json_schema_extra={"examples": [LAYER_EXAMPLE]})


async def users_by_id(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, User]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {u.id: u for u in await session.scalars(select(User).where(User.id.in_(wanted)))}


async def feature_summaries(
    session: AsyncSession, *, layer_id: uuid.UUID
) -> list[LayerFeatureResponse]:
    rows = await session.scalars(
        select(LayerFeature)
        .where(LayerFeature.layer_id == layer_id)
        .order_by(LayerFeature.display_order, LayerFeature.id)
        .limit(FEATURE_SUMMARY_LIMIT)
    )
    return [
        LayerFeatureResponse(
            id=f.id,
            geometry_type=f.geometry.geom_type,
            properties=f.properties or {},
            created_at=f.created_at,
        )
        for f in rows
    ]


def samsyn_source_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored `source_config` as SamSyn's frontend reads it: no pending-capabilities
    marker (that is `warnings`), and `bounds` as one flat `[west, south, east, north]`
    (MapLibre's raster-source bounds), where we keep `[[west, south], [east, north]]`."""
    shown = pending.strip(config)
    match shown.get("bounds"):
        case [[west, south], [east, north]]:
            shown = shown | {"bounds": [west, south, east, north]}
    return shown


def layer_response(
    layer: Layer, creator: User | None, features: Sequence[LayerFeatureResponse] = ()
) -> LayerResponse:
    return LayerResponse(
        id=layer.id,
        name=layer.name,
        source_type=layer.source_type,
        description=layer.description,
        category=layer.category,
        created_by=layer.created_by,
        editable=layer.editable,
        is_global=layer.is_global,
        visibility=layer.visibility,
        creation_source=layer.creation_source,
        source_config=samsyn_source_config(layer.source_config or {}),
        style_config=layer.style_config or {},
        legend_config=layer.legend_config or {},
        layer_metadata=layer.meta or {},
        created_at=layer.created_at,
        updated_at=layer.updated_at,
        features=list(features),
        creator=user_response(creator) if creator is not None else None,
        warnings=pending.warnings(layer.source_config),
    )


async def layer_responses(session: AsyncSession, layers: Sequence[Layer]) -> list[LayerResponse]:
    """Many layers, their creators in one query (no feature lists)."""
    creators = await users_by_id(session, (layer.created_by for layer in layers))
    return [layer_response(layer, creators.get(layer.created_by)) for layer in layers]


async def layer_detail(session: AsyncSession, layer: Layer) -> LayerResponse:
    """One layer with its creator and feature summaries."""
    creators = await users_by_id(session, [layer.created_by])
    features = await feature_summaries(session, layer_id=layer.id)
    return layer_response(layer, creators.get(layer.created_by), features)


class StatusMessage(BaseModel):
    """SamSyn's answer to a delete: `{"status": "success", "message": ...}`."""

    status: str = "success"
    message: str

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "success", "message": "Layer deleted"}]}
    )
