"""`/api/v1/layers/{layer_id}/features` in SamSyn's shapes (adapter over the features service).

The rules are `/api/layers/{id}/features`': read by whoever may read the layer (404
otherwise), written by its creator, or by any signed-in reader when the layer is editable by
everyone (403); only vector layers have features (409). Writes are all or nothing (an invalid
feature fails the request with a 422 naming it) and, once committed, drop the layer's stale
tiles and tell the maps showing it (`events.after_commit`), as on `/api`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from worldbase.apps.samsyn.dependencies import layer_for_feature_edit, layer_for_read
from worldbase.apps.samsyn.events import after_commit
from worldbase.apps.samsyn.features import service as service_features
from worldbase.apps.samsyn.models import Layer
from worldbase.apps.samsyn.settings import SamsynSettings
from worldbase.apps.samsyn.v1.feature_schemas import (
    BulkFeatureResponse,
    FeatureDeleted,
    FeatureResponse,
    V1BulkFeatureCreate,
    V1FeatureCreate,
    V1FeatureUpdate,
    feature_response,
)
from worldbase.core.auth import CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import BadInput
from worldbase.core.offload import run_sized
from worldbase.core.services import ServicesDep
from worldbase.geo.geometry import parse_bbox

router = APIRouter(prefix="/layers", tags=["samsyn v1: features"])


async def _readable(layer_id: uuid.UUID, session: Session, user: OptionalUser) -> Layer:
    layer = await layer_for_read(layer_id, session, user)
    service_features.require_vector(layer)
    return layer


async def _editable(layer_id: uuid.UUID, session: Session, user: CurrentUser) -> Layer:
    layer = await layer_for_feature_edit(layer_id, session, user)
    service_features.require_vector(layer)
    return layer


ReadableLayer = Annotated[Layer, Depends(_readable)]
EditableLayer = Annotated[Layer, Depends(_editable)]


def _size(request: Request) -> int:
    """The body's size, which decides whether its geometries are parsed off the event loop."""
    length = request.headers.get("content-length", "0")
    return int(length) if length.isdigit() else 0


async def _parse(request: Request, services: ServicesDep, body: dict[str, Any]) -> Any:
    """`features.service.parse_input` of a GeoJSON Feature or FeatureCollection, with the
    server's vertex limits (422 naming the first invalid feature)."""
    settings = services.settings
    return await run_sized(
        _size(request),
        service_features.parse_input,
        body,
        max_feature_vertices=settings.worldbase_max_feature_vertices,
        max_request_vertices=settings.app(SamsynSettings).max_request_vertices,
    )


@router.get(
    "/{layer_id}/features",
    response_model=list[FeatureResponse],
    summary="A vector layer's features, in display order (bbox filter, pages)",
)
async def list_features(
    layer: ReadableLayer,
    session: Session,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minLon,minLat,maxLon,maxLat")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Written as JSON text by the features service (`Shape.row`: one SQL statement on
    PostgreSQL, one shapely batch on SQLite), as `/api`'s list is: no per-row models."""
    box = parse_bbox(bbox) if bbox is not None else None
    page = await service_features.list(
        session,
        layer=layer,
        bbox=box,
        limit=limit,
        offset=offset,
        shape=service_features.Shape.row,
        counted=False,
    )
    return Response(f"[{page.body}]", media_type="application/json")


@router.get(
    "/{layer_id}/features/{feature_id}", response_model=FeatureResponse, summary="One feature"
)
async def get_feature(
    feature_id: uuid.UUID, layer: ReadableLayer, session: Session
) -> FeatureResponse:
    feature = await service_features.get_or_raise(session, layer=layer, feature_id=feature_id)
    return feature_response(feature)


@router.post(
    "/{layer_id}/features",
    response_model=FeatureResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Add one feature to a vector layer",
)
async def create_feature(
    request: Request,
    body: V1FeatureCreate,
    layer: EditableLayer,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> FeatureResponse:
    feature = {"type": "Feature", "geometry": body.geometry, "properties": body.properties}
    items = await _parse(request, services, feature)
    written, change = await service_features.create_many(
        session, layer_id=layer.id, items=items, feature_type=body.feature_type
    )
    await after_commit(services, change, actor=user)
    return feature_response(written[0])


@router.post(
    "/{layer_id}/features/bulk",
    response_model=BulkFeatureResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Add a GeoJSON FeatureCollection to a vector layer (all or nothing)",
)
async def bulk_create_features(
    request: Request,
    body: V1BulkFeatureCreate,
    layer: EditableLayer,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> BulkFeatureResponse:
    collection = {"type": "FeatureCollection", "features": body.features}
    items = await _parse(request, services, collection)
    written, change = await service_features.create_many(
        session, layer_id=layer.id, items=items, feature_type=body.feature_type
    )
    await after_commit(services, change, actor=user)
    ids = [f.id for f in written]
    return BulkFeatureResponse(
        success=True, created_count=len(ids), failed_count=0, feature_ids=ids, errors=[]
    )


@router.put(
    "/{layer_id}/features/{feature_id}",
    response_model=FeatureResponse,
    summary="Change a feature's geometry, properties or feature_type",
)
async def update_feature(
    request: Request,
    feature_id: uuid.UUID,
    body: V1FeatureUpdate,
    layer: EditableLayer,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> FeatureResponse:
    sent = body.model_dump(exclude_unset=True)
    shape = {k: sent[k] for k in ("geometry", "properties") if k in sent}
    if "geometry" in shape and shape["geometry"] is None:
        raise BadInput("'geometry' cannot be null", detail={"path": "geometry"})
    values: dict[str, Any] = {}
    if shape:
        values = await run_sized(
            _size(request),
            service_features.parse_update,
            shape,
            max_feature_vertices=services.settings.worldbase_max_feature_vertices,
        )
    if "feature_type" in sent:
        values["feature_type"] = sent["feature_type"]
    if not values:
        raise BadInput("Nothing to update: send geometry, properties or feature_type")
    change = await service_features.update(
        session, layer_id=layer.id, feature_id=feature_id, values=values
    )
    await after_commit(services, change, actor=user)
    feature = await service_features.get_or_raise(session, layer=layer, feature_id=feature_id)
    return feature_response(feature)


@router.delete(
    "/{layer_id}/features/{feature_id}",
    response_model=FeatureDeleted,
    summary="Delete a feature",
)
async def delete_feature(
    feature_id: uuid.UUID,
    layer: EditableLayer,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> FeatureDeleted:
    change = await service_features.delete(session, layer_id=layer.id, feature_id=feature_id)
    await after_commit(services, change, actor=user)
    return FeatureDeleted(status="success", message="Feature deleted")
