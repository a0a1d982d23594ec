"""Routes: habitat tiles (signed-in callers), one habitat or every habitat.

`.png` / `.webp` after `{y}`, or `?format=`; PNG by default. Tiles are cached in the tile
cache (memory/Redis, then object storage under `tiles/habitats/...`), answer
`If-None-Match` with 304 before any lookup, and say where they came from in `X-Tile-Cache`
(`memory`, `storage` or `miss`). A tile without any habitat pixel is a transparent image
(image clients such as Cesium cannot decode an empty 204).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from worldbase.apps.habitats import codes, service_tiles, tile_state
from worldbase.apps.habitats.dependencies import MAX_ID
from worldbase.apps.habitats.exceptions import HabitatNotFound
from worldbase.apps.habitats.raster import OWN_STORAGE, raster_url
from worldbase.core.auth import TokenHolder
from worldbase.core.db import Session
from worldbase.core.services import StorageDep
from worldbase.geo import classified
from worldbase.geo.tile_cache import TileCacheDep, TileKey
from worldbase.geo.tiles import not_modified, validate_tile
from worldbase.settings import Settings

router = APIRouter()
Format = Literal["png", "webp"]
MAX_ZOOM = 22
MAX_AGE = 3600
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
FormatQuery = Annotated[Format | None, Query(alias="format", description="png (default) or webp")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _headers(key: TileKey, hit: str | None) -> dict[str, str]:
    return {
        "ETag": key.etag,
        "Cache-Control": f"private, max-age={MAX_AGE}",
        "X-Tile-Cache": hit or "miss",
    }


async def _habitat_tile(
    request: Request,
    session: Session,
    storage: StorageDep,
    tiles: TileCacheDep,
    *,
    habitat_id: int,
    z: int,
    x: int,
    y: int,
    fmt: str,
) -> Response:
    validate_tile(z, x, y, max_zoom=MAX_ZOOM)
    if not 0 < habitat_id <= MAX_ID:
        raise HabitatNotFound()
    settings = _settings(request)
    habitat = await tile_state.tile_habitat(session, tiles.cache, habitat_id=habitat_id)
    url = await raster_url(settings, storage) if habitat.raster_value is not None else None
    key = service_tiles.key_for(str(habitat.id), habitat.version, url or "", z=z, x=x, y=y, fmt=fmt)
    media_type = classified.MEDIA_TYPES[fmt]
    if not_modified(request, key.etag):
        return Response(status_code=304, headers=_headers(key, "client"))

    async def render() -> bytes:
        colors: dict[int, classified.RGBA] = {}
        if habitat.raster_value is not None:
            colors = {habitat.raster_value: codes.rgba(habitat.color_hex)}
        vectors: list[classified.VectorLayer] = []
        if habitat.has_geometry:  # drawn over its raster class when it has both
            vectors = await service_tiles.vectors_in_tile(session, ids=[habitat.id], z=z, x=x, y=y)
        return await classified.render_tile(
            url,
            settings=settings,
            z=z,
            x=x,
            y=y,
            colors=colors,
            vectors=vectors,
            fmt=fmt,
            own_storage=OWN_STORAGE,
        )

    tile = await tiles.get_or_render(key, media_type=media_type, render=render)
    return Response(tile.content, media_type=media_type, headers=_headers(key, tile.hit))


async def _all_tile(
    request: Request,
    session: Session,
    storage: StorageDep,
    tiles: TileCacheDep,
    *,
    z: int,
    x: int,
    y: int,
    fmt: str,
) -> Response:
    validate_tile(z, x, y, max_zoom=MAX_ZOOM)
    settings = _settings(request)
    habitats = await tile_state.tile_habitats(session, tiles.cache)
    colors = service_tiles.colors_of(habitats)
    url = await raster_url(settings, storage) if colors else None
    version = service_tiles.all_version(habitats)
    key = service_tiles.key_for(service_tiles.ALL, version, url or "", z=z, x=x, y=y, fmt=fmt)
    media_type = classified.MEDIA_TYPES[fmt]
    if not_modified(request, key.etag):
        return Response(status_code=304, headers=_headers(key, "client"))

    async def render() -> bytes:
        vector_ids = [h.id for h in habitats if h.has_geometry]
        vectors = await service_tiles.vectors_in_tile(session, ids=vector_ids, z=z, x=x, y=y)
        return await classified.render_tile(
            url,
            settings=settings,
            z=z,
            x=x,
            y=y,
            colors=colors,
            vectors=vectors,
            fmt=fmt,
            own_storage=OWN_STORAGE,
        )

    tile = await tiles.get_or_render(key, media_type=media_type, render=render)
    return Response(tile.content, media_type=media_type, headers=_headers(key, tile.hit))


_ONE = "One habitat's tile: its class in its colour, transparent elsewhere (signed-in)"
_ALL = "Every habitat's tile, coloured by the habitats table (signed-in)"


# The suffixed paths first: `{y}` alone would also match "12.png".
@router.get(
    "/habitats/tiles/{z}/{x}/{y}.{fmt}",
    summary=_ALL,
    response_class=Response,
    responses=TILE_RESPONSES,
)
async def all_habitats_tile_suffixed(
    request: Request,
    z: int,
    x: int,
    y: int,
    fmt: Format,
    session: Session,
    storage: StorageDep,
    tiles: TileCacheDep,
    _: TokenHolder,
) -> Response:
    return await _all_tile(request, session, storage, tiles, z=z, x=x, y=y, fmt=fmt)


@router.get(
    "/habitats/tiles/{z}/{x}/{y}", summary=_ALL, response_class=Response, responses=TILE_RESPONSES
)
async def all_habitats_tile(
    request: Request,
    z: int,
    x: int,
    y: int,
    session: Session,
    storage: StorageDep,
    tiles: TileCacheDep,
    _: TokenHolder,
    fmt: FormatQuery = None,
) -> Response:
    return await _all_tile(request, session, storage, tiles, z=z, x=x, y=y, fmt=fmt or "png")


@router.get(
    "/habitats/{id}/tiles/{z}/{x}/{y}.{fmt}",
    summary=_ONE,
    response_class=Response,
    responses=TILE_RESPONSES,
)
async def habitat_tile_suffixed(
    request: Request,
    id: int,
    z: int,
    x: int,
    y: int,
    fmt: Format,
    session: Session,
    storage: StorageDep,
    tiles: TileCacheDep,
    _: TokenHolder,
) -> Response:
    return await _habitat_tile(
        request, session, storage, tiles, habitat_id=id, z=z, x=x, y=y, fmt=fmt
    )


@router.get(
    "/habitats/{id}/tiles/{z}/{x}/{y}",
    summary=_ONE,
    response_class=Response,
    responses=TILE_RESPONSES,
)
async def habitat_tile(
    request: Request,
    id: int,
    z: int,
    x: int,
    y: int,
    session: Session,
    storage: StorageDep,
    tiles: TileCacheDep,
    _: TokenHolder,
    fmt: FormatQuery = None,
) -> Response:
    return await _habitat_tile(
        request, session, storage, tiles, habitat_id=id, z=z, x=x, y=y, fmt=fmt or "png"
    )
