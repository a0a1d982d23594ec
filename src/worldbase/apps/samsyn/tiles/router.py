"""Routes: live map events, the MapLibre style, vector tiles and TileJSON."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.status import HTTP_200_OK

from worldbase.apps.samsyn.access import current_role, map_role
from worldbase.apps.samsyn.dependencies import LayerForRead, MapForRead
from worldbase.apps.samsyn.events import ACCESS_EVENTS, map_channel
from worldbase.apps.samsyn.features.service import require_vector
from worldbase.apps.samsyn.maps import service as service_maps
from worldbase.apps.samsyn.maps.style import build_style
from worldbase.apps.samsyn.models import SourceType
from worldbase.apps.samsyn.raster import service as service_raster
from worldbase.apps.samsyn.raster.router import (
    TimeQuery,
    geotiff_tile,
    geotiff_tilejson,
    layer_tile_policy,
)
from worldbase.apps.samsyn.raster.router import router as raster_router
from worldbase.apps.samsyn.tiles import service as service_tiles
from worldbase.apps.samsyn.wms import service as service_wms
from worldbase.core.auth import OptionalUser, authenticate_token
from worldbase.core.cache import Cache
from worldbase.core.db import Session
from worldbase.core.errors import DomainError, NotFound
from worldbase.core.fast_lane import CachePolicy
from worldbase.core.live_socket import AccessGuard, serve_websocket
from worldbase.core.realtime import user_channel
from worldbase.core.services import CacheDep, ServicesDep, services_of
from worldbase.geo.raster import RenderQueryDep
from worldbase.geo.tile_cache import TileCache, serve, tile_key
from worldbase.geo.tiles import validate_tile
from worldbase.geo.vector_tiles import MVT_MEDIA_TYPE, tilejson

router = APIRouter()
# GeoTIFF routes first: `/tiles/{z}/{x}/{y}.png` must not reach the plain tile route below.
router.include_router(raster_router)

MAX_ZOOM = 22
TILE_MAX_AGE = 60  # seconds; clients revalidate with the ETag after that
MVT_NAMESPACE = "samsyn-mvt"
WS_NOT_FOUND = 4404


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get(
    "/api/maps/{id}/style.json",
    summary="A MapLibre style (v8) of the map's visible layers, in order, over its basemap",
    responses={HTTP_200_OK: {"content": {"application/json": {"example": {"version": 8}}}}},
)
async def map_style(request: Request, access: MapForRead, session: Session) -> dict[str, Any]:
    layers = await service_maps.list_layers(session, map_id=access.map.id)
    return build_style(access.map, layers, base_url=_base_url(request))


@router.websocket("/api/maps/{id}/events")
async def map_events(websocket: WebSocket, id: uuid.UUID, token: str | None = None) -> None:
    """JSON events for every change to the map, its layers, features, collaborators and
    comments, by anyone (through the hub, so across workers). `?token=` authenticates
    (browsers cannot set headers on a WebSocket); public maps need none. Close codes: 4401
    bad token, 4403 disabled account, 4404 no such map or not readable, 1013 too slow.
    Read access is re-checked while the socket lives: when the client loses it (removed
    as a collaborator, the map made private or deleted, the account disabled or deleted)
    the socket closes with 4403 at once, in every worker, before the change's event."""
    await websocket.accept()
    services = services_of(websocket)
    try:
        async with services.db.sessionmaker() as session:
            user = None
            if token:
                user = await authenticate_token(session, token=token, settings=services.settings)
            try:
                map_ = await service_maps.get_or_raise(session, map_id=id)
            except NotFound:
                map_ = None
            role = await map_role(session, map_=map_, user=user) if map_ is not None else None
    except DomainError as exc:
        await websocket.close(code=4000 + exc.status_code, reason=exc.message[:120])
        return
    if role is None:
        await websocket.close(code=WS_NOT_FOUND, reason="Map not found")
        return
    user_id = user.id if user is not None else None
    channels = [map_channel(id)] + ([user_channel(user_id)] if user_id is not None else [])
    subscription = services.hub.subscribe(*channels)
    await subscription.ready(within=5)

    async def still_readable() -> bool:
        async with services.db.sessionmaker() as session:
            return await current_role(session, map_id=id, user_id=user_id) is not None

    guard = AccessGuard(
        check=still_readable,
        every=services.settings.worldbase_ws_recheck_seconds,
        rechecks=lambda event: event.get("type") in ACCESS_EVENTS,
    )
    hello = {"type": "subscribed", "map_id": str(id), "role": role.name}
    await serve_websocket(websocket, subscription, initial=hello, guard=guard)


@router.get(
    "/api/layers/{id}/tiles/{z}/{x}/{y}",
    summary="A layer's tile: MVT for vector layers, PNG for GeoTIFF layers",
    description=(
        "Vector layers: a Mapbox Vector Tile (layer `features`). GeoTIFF layers: a PNG with "
        "TiTiler's render parameters over the layer's `tileParams` and `?time=` for temporal "
        "layers (other formats and `@2x` at `/tiles/{z}/{x}/{y}[@2x].{fmt}`). WMS layers: "
        "the WMS's GetMap for the tile's EPSG:3857 bounds in the layer's format, `?time=` "
        "within the layer's range, `?tilesize=512`; a failing WMS is 502, a slow one 504. "
        "Empty tiles are 204; every tile has an ETag (304 on If-None-Match)."
    ),
    response_class=Response,
    responses={
        200: {
            "content": {
                MVT_MEDIA_TYPE: {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "(binary Mapbox Vector Tile, layer 'features')",
                },
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "The tile",
        },
        204: {"description": "Empty tile"},
        304: {"description": "Not modified (If-None-Match)"},
    },
)
async def layer_tile(
    request: Request,
    id: uuid.UUID,
    z: int,
    x: int,
    y: int,
    user: OptionalUser,
    cache: CacheDep,
    session: Session,
    services: ServicesDep,
    render: RenderQueryDep,
    time: TimeQuery = None,
) -> Response:
    # One statement for the layer (any type) and the permission; no ORM objects.
    raster_layer = await service_raster.get_or_raise(session, layer_id=id, user=user)
    validate_tile(z, x, y, max_zoom=MAX_ZOOM)
    if raster_layer.source_type == SourceType.geotiff:
        return await geotiff_tile(
            request, layer=raster_layer, services=services, z=z, x=x, y=y, fmt="png", scale=1,
            query=render, time=time,
        )  # fmt: skip
    layer = service_tiles.TileLayer.of(raster_layer)
    if layer.source_type == SourceType.wms:
        wms_tile = await service_wms.get_tile(
            session, layer_id=id, z=z, x=x, y=y, tilesize=render.tilesize or 256, time=time
        )
        return await serve(
            request,
            wms_tile.key,
            partial(service_wms.fetch, wms_tile, settings=services.settings),
            CachePolicy(max_age=service_wms.TILE_MAX_AGE, public=layer.is_global),
            media_type=wms_tile.media_type,
            tiles=service_wms.tile_cache(wms_tile, cache=cache, storage=services.storage),
        )
    return await vector_tile(request, session=session, cache=cache, layer=layer, z=z, x=x, y=y)


async def vector_tile(
    request: Request,
    *,
    session: AsyncSession,
    cache: Cache,
    layer: service_tiles.TileLayer,
    z: int,
    x: int,
    y: int,
) -> Response:
    """A readable vector layer's MVT tile (z/x/y validated): ETag, cache, render."""
    # Keyed by the layer's revision, bumped by every feature change: stale tiles are never
    # served, and old revisions age out of the cache (its memory/Redis tier only).
    key = tile_key(
        namespace=MVT_NAMESPACE, layer_id=str(layer.id), version=layer.revision, params="",
        z=z, x=x, y=y, fmt="mvt",
    )  # fmt: skip
    render = partial(
        service_tiles.render,
        session,
        layer_id=layer.id,
        z=z,
        x=x,
        y=y,
        points_only=layer.points_only,
    )
    policy = layer_tile_policy(layer.id, is_global=layer.is_global, max_age=TILE_MAX_AGE)
    tiles = TileCache(cache=cache, storage=None)
    return await serve(request, key, render, policy, media_type=MVT_MEDIA_TYPE, tiles=tiles)


@router.get(
    "/api/layers/{id}/tilejson.json",
    summary="TileJSON of a vector or GeoTIFF layer's tiles",
    description=(
        "GeoTIFF layers: bounds and zooms read from the COG, the render query carried into "
        "the tile URLs, plus `delivery`, the COG `url` for `delivery: direct` clients and "
        "`time` (temporal layers, `?time=`)."
    ),
    responses={HTTP_200_OK: {"content": {"application/json": {"example": {"tilejson": "3.0.0"}}}}},
)
async def layer_tilejson(
    request: Request,
    layer: LayerForRead,
    session: Session,
    user: OptionalUser,
    services: ServicesDep,
    render: RenderQueryDep,
    time: TimeQuery = None,
) -> dict[str, Any]:
    if layer.source_type == SourceType.geotiff:
        raster_layer = await service_raster.get_or_raise(session, layer_id=layer.id, user=user)
        return await geotiff_tilejson(
            request, layer=raster_layer, services=services, render=render, time=time
        )
    require_vector(layer)
    config = layer.source_config or {}
    bounds = config.get("bounds")
    flat = None
    if bounds:
        (minx, miny), (maxx, maxy) = bounds
        flat = [minx, max(miny, -85.0511), maxx, min(maxy, 85.0511)]
    fields = {"id": "String"}
    return tilejson(
        name=layer.name,
        tiles_url_template=f"{_base_url(request)}/api/layers/{layer.id}/tiles/{{z}}/{{x}}/{{y}}",
        bounds=flat,
        minzoom=0,
        maxzoom=MAX_ZOOM,
        vector_layers=[
            {"id": "features", "fields": fields, "description": layer.description or ""}
        ],
    )
