"""`/api/v1/gfw` in SamSyn's shapes: Global Fishing Watch heatmap tiles through the server's
token (`apps/samsyn/gfw/service.py`), and whether the proxy is configured.

Tiles are public (SamSyn's map asks without signing in; the token never leaves the server)
and the same for everyone: the tile pipeline keeps them in memory/Redis and the fast lane
for `GFW_TILE_MAX_AGE` seconds, with an ETag. Every query parameter is passed on to GFW
(those SamSyn sends are documented and checked here); GFW's empty tile is 204.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from worldbase.apps.samsyn.gfw import service as service_gfw
from worldbase.apps.samsyn.settings import SamsynSettings
from worldbase.core.fast_lane import CachePolicy
from worldbase.core.schemas import examples
from worldbase.core.services import ServicesDep
from worldbase.geo.tile_cache import TileCache, serve, tile_key

router = APIRouter(prefix="/gfw", tags=["samsyn v1: gfw"])

NAMESPACE = "samsyn-gfw"
TileIndex = Annotated[int, Path(ge=0, le=2**service_gfw.MAX_ZOOM - 1)]

TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}, "example": "(binary tile)"}
            for media in service_gfw.MEDIA_TYPES.values()
        },
        "description": "The heatmap tile (MVT, layer `main`; or PNG)",
    },
    204: {"description": "No activity in this tile"},
    304: {"description": "Not modified (If-None-Match)"},
}


class GfwHealth(BaseModel):
    model_config = examples({"status": "ok", "configured": True})

    status: Literal["ok", "not_configured"]
    configured: bool


@router.get(
    "/v3/4wings/tile/heatmap/{z}/{x}/{y}",
    summary="A Global Fishing Watch 4Wings heatmap tile, fetched with the server's token",
    response_class=Response,
    responses=TILE_RESPONSES,
)
async def gfw_heatmap_tile(
    request: Request,
    z: Annotated[int, Path(ge=0, le=service_gfw.MAX_ZOOM)],
    x: TileIndex,
    y: TileIndex,
    services: ServicesDep,
    format: Annotated[Literal["MVT", "PNG"] | None, Query(description="MVT (default) or PNG")] = (
        None
    ),
    interval: Annotated[
        Literal["HOUR", "DAY", "MONTH", "YEAR"] | None, Query(description="Time bins")
    ] = None,
    dataset: Annotated[
        str | None,
        Query(
            alias="datasets[0]",
            description="e.g. public-global-fishing-effort:latest",
            max_length=200,
            pattern=r"^[A-Za-z0-9_.:\-]+$",
        ),
    ] = None,
    date_range: Annotated[
        str | None,
        Query(
            alias="date-range",
            description="`start,end` (YYYY-MM-DD)",
            pattern=r"^\d{4}-\d{2}-\d{2},\d{4}-\d{2}-\d{2}$",
        ),
    ] = None,
) -> Response:
    settings = services.settings.app(SamsynSettings)
    tile = service_gfw.heatmap_tile(z=z, x=x, y=y, query=request.query_params.multi_items())
    key = tile_key(
        namespace=NAMESPACE, layer_id="", version="", params=tile.query_string,
        z=z, x=x, y=y, fmt=tile.media_type.rsplit("/", 1)[-1],
    )  # fmt: skip
    max_age = settings.gfw_tile_max_age
    policy = CachePolicy(max_age=max_age, public=True, tags=(NAMESPACE,))
    tiles = TileCache(cache=services.cache, storage=None, memory_ttl=max(max_age, 1))

    async def fetch() -> bytes:
        return await service_gfw.fetch(settings, tile)

    return await serve(request, key, fetch, policy, media_type=tile.media_type, tiles=tiles)


@router.get(
    "/health",
    response_model=GfwHealth,
    summary="Whether the Global Fishing Watch proxy has a token (GFW_API_TOKEN)",
)
async def gfw_health(services: ServicesDep) -> GfwHealth:
    configured = service_gfw.configured(services.settings.app(SamsynSettings))
    return GfwHealth(status="ok" if configured else "not_configured", configured=configured)
