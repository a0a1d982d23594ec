"""Routes: habitat tiles (signed-in callers), one habitat or every habitat.

`.png` / `.webp` after `{y}`, or `?format=`; PNG by default. Tiles are cached in the tile
cache (memory/Redis, then object storage under `tiles/habitats/...`), answer
`If-None-Match` with 304 before any lookup, and say where they came from in `X-Tile-Cache`
(`memory`, `storage` or `miss`). A tile without any habitat pixel is a transparent image
(image clients such as Cesium cannot decode an empty 204).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from worldbase.apps.habitats import service_tiles
from worldbase.apps.habitats.dependencies import MAX_ID
from worldbase.apps.habitats.exceptions import HabitatNotFound
from worldbase.apps.habitats.service_tiles import TileAddress
from worldbase.core.auth import TokenHolder
from worldbase.core.db import Session
from worldbase.core.fast_lane import CachePolicy
from worldbase.core.services import services_of
from worldbase.geo.tile_cache import TileCacheDep, serve
from worldbase.geo.tiles import validate_tile

router = APIRouter()
Format = Literal["png", "webp"]
MAX_ZOOM = 22
POLICY = CachePolicy(max_age=3600)  # private: signed-in callers only
TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "image/png": {"example": "(PNG bytes)"},
            "image/webp": {"example": "(WebP bytes)"},
        },
        "description": "The tile (transparent where there is no habitat)",
    },
    304: {"description": "Not modified (If-None-Match)"},
}
# A path parameter where the path ends in `.{format}`, else the query's `?format=`.
FormatParam = Annotated[Format, Field(description="png (default) or webp")]


async def tile_address(z: int, x: int, y: int, format: FormatParam = "png") -> TileAddress:
    validate_tile(z, x, y, max_zoom=MAX_ZOOM)
    return TileAddress(z, x, y, format)


# After `TokenHolder` in the routes: a caller without a valid token learns nothing else.
Address = Annotated[TileAddress, Depends(tile_address)]
_ONE = "One habitat's tile: its class in its colour, transparent elsewhere (signed-in)"
_ALL = "Every habitat's tile, coloured by the habitats table (signed-in)"


# The suffixed paths first (the lower decorator): `{y}` alone would also match "12.png".
@router.get(
    "/habitats/tiles/{z}/{x}/{y}", summary=_ALL, response_class=Response, responses=TILE_RESPONSES
)
@router.get(
    "/habitats/tiles/{z}/{x}/{y}.{format}",
    summary=_ALL,
    response_class=Response,
    responses=TILE_RESPONSES,
)
async def all_habitats_tile(
    request: Request, _: TokenHolder, tile: Address, session: Session, tiles: TileCacheDep
) -> Response:
    key, render = await service_tiles.all_tile(session, tiles, services_of(request), tile)
    return await serve(request, key, render, POLICY, media_type=tile.media_type, tiles=tiles)


@router.get(
    "/habitats/{id}/tiles/{z}/{x}/{y}",
    summary=_ONE,
    response_class=Response,
    responses=TILE_RESPONSES,
)
@router.get(
    "/habitats/{id}/tiles/{z}/{x}/{y}.{format}",
    summary=_ONE,
    response_class=Response,
    responses=TILE_RESPONSES,
)
async def habitat_tile(
    request: Request, id: int, _: TokenHolder, tile: Address, session: Session, tiles: TileCacheDep
) -> Response:
    if not 0 < id <= MAX_ID:
        raise HabitatNotFound()
    key, render = await service_tiles.habitat_tile(session, tiles, services_of(request), id, tile)
    return await serve(request, key, render, POLICY, media_type=tile.media_type, tiles=tiles)
