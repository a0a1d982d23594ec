"""Routes: a vector layer's features (GeoJSON pages, create, update, delete)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from worldbase.apps.samsyn.dependencies import LayerForFeatureEdit, LayerRowForRead
from worldbase.apps.samsyn.events import after_commit
from worldbase.apps.samsyn.features import service as service_features
from worldbase.apps.samsyn.features.schemas import (
    FEATURE_COLLECTION_EXAMPLE,
    FEATURE_EXAMPLE,
    FeatureCollectionRead,
    FeatureRead,
)
from worldbase.apps.samsyn.settings import SamsynSettings
from worldbase.core.auth import CurrentUser
from worldbase.core.db import Session
from worldbase.core.offload import run_sized
from worldbase.core.services import ServicesDep
from worldbase.geo.geometry import parse_bbox

router = APIRouter()


def _feature_body(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """The request body as OpenAPI shows it (the routes read it themselves, off the loop)."""
    content = {
        "schema": {"type": "object"},
        "examples": {str(i): {"value": e} for i, e in enumerate(examples)},
    }
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


MAX_PAGE = 10_000  # features per page
MAX_OFFSET = 10_000_000
MAX_BBOX_CHARS = 200


def _page_url(request: Request, offset: int) -> str:
    return str(request.url.include_query_params(offset=offset))


@router.get(
    "/api/layers/{id}/features",
    response_model=FeatureCollectionRead,
    summary="A vector layer's features as a GeoJSON FeatureCollection (paginated)",
    responses={200: {"content": {"application/geo+json": {}}}},
)
async def list_features(
    request: Request,
    layer: LayerRowForRead,
    session: Session,
    bbox: Annotated[
        str | None, Query(description="minx,miny,maxx,maxy in degrees", max_length=MAX_BBOX_CHARS)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    service_features.require_vector(layer)
    box = parse_bbox(bbox) if bbox is not None else None
    page = await service_features.list(session, layer=layer, bbox=box, limit=limit, offset=offset)
    return features_response(request, page, limit=limit, offset=offset)


def features_response(
    request: Request, page: service_features.FeaturePage, *, limit: int, offset: int
) -> Response:
    """The page as a GeoJSON FeatureCollection with its counts and self/next/prev links."""
    links = [{"rel": "self", "href": str(request.url), "type": "application/geo+json"}]
    if offset + page.returned < page.total:
        links.append(
            {
                "rel": "next",
                "href": _page_url(request, offset + limit),
                "type": "application/geo+json",
            }
        )
    if offset > 0:
        links.append(
            {
                "rel": "prev",
                "href": _page_url(request, max(offset - limit, 0)),
                "type": "application/geo+json",
            }
        )
    body = (
        '{"type":"FeatureCollection","features":['
        + page.body
        + f'],"numberMatched":{page.total},"numberReturned":{page.returned},'
        + f'"links":{service_features.dumps(links)}}}'
    )
    return Response(body, media_type="application/geo+json")


@router.post(
    "/api/layers/{id}/features",
    response_model=FeatureCollectionRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a Feature or a FeatureCollection to a vector layer (all or nothing)",
    description=(
        "Every feature is validated first; the first invalid one fails the request with a 422 "
        "naming its index (`features[3].geometry`) and nothing is written. A top-level "
        "`display_order` on a feature sets its order (else it goes last). 409 on a layer "
        "that is not a vector layer. A feature has at most `WORLDBASE_MAX_FEATURE_VERTICES` "
        "positions and a request `WORLDBASE_MAX_REQUEST_VERTICES` (422 naming the limit)."
    ),
    openapi_extra=_feature_body([FEATURE_COLLECTION_EXAMPLE, FEATURE_EXAMPLE]),
)
async def create_features(
    request: Request,
    layer: LayerForFeatureEdit,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> Response:
    service_features.require_vector(layer)
    # Large bodies are decoded, validated and answered off the event loop.
    raw = await request.body()
    settings = services.settings
    items = await run_sized(
        len(raw),
        service_features.decode_input,
        raw,
        max_feature_vertices=settings.worldbase_max_feature_vertices,
        max_request_vertices=settings.app(SamsynSettings).max_request_vertices,
    )
    features, change = await service_features.create_many(session, layer_id=layer.id, items=items)
    await after_commit(services, change, actor=user)
    rows = [service_features.written(f) for f in features]
    content = await run_sized(len(raw), service_features.features_json, rows)
    return Response(content, status_code=status.HTTP_201_CREATED, media_type="application/geo+json")


@router.put(
    "/api/layers/{id}/features/{feature_id}",
    response_model=FeatureRead,
    summary="Update a feature's geometry, properties or display_order",
    description="A geometry has at most `WORLDBASE_MAX_FEATURE_VERTICES` positions (422).",
    openapi_extra=_feature_body([FEATURE_EXAMPLE]),
)
async def update_feature(
    request: Request,
    feature_id: uuid.UUID,
    layer: LayerForFeatureEdit,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> Any:
    service_features.require_vector(layer)
    raw = await request.body()
    limit = services.settings.worldbase_max_feature_vertices
    values = await run_sized(
        len(raw), service_features.decode_update, raw, max_feature_vertices=limit
    )
    change = await service_features.update(
        session, layer_id=layer.id, feature_id=feature_id, values=values
    )
    await after_commit(services, change, actor=user)
    size = len(raw) if "geometry" in values else 0
    content = await run_sized(size, service_features.dumps, change.data["feature"])
    return Response(content, media_type="application/json")


@router.delete(
    "/api/layers/{id}/features/{feature_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a feature",
)
async def delete_feature(
    feature_id: uuid.UUID,
    layer: LayerForFeatureEdit,
    session: Session,
    user: CurrentUser,
    services: ServicesDep,
) -> Response:
    service_features.require_vector(layer)
    change = await service_features.delete(session, layer_id=layer.id, feature_id=feature_id)
    await after_commit(services, change, actor=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
