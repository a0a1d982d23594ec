"""`/api/v1/titiler` in SamSyn's shapes: tiles, info, statistics and previews of the COGs
SamSyn's layers name, drawn by Worldbase's raster engine (`geo.raster`; no TiTiler behind).

SamSyn's rule for `url`: a GeoTIFF that a layer names (its `url`/`cogUrl`, or one step of
its URL template; compared normalized) — anything else is 403, except that admins may read
any URL's info, statistics and preview (to check a GeoTIFF before making a layer of it), and
a URL an admin inspected may be previewed without a token for ten minutes (the admin form
shows it as an <img>). A preview refused to an <img> is a 403 with a blank PNG, not JSON: the
form renders the <img> as the URL is typed, before its admin inspects it, and an error it
cannot decode would hide the preview for good.
Whoever asks, the source policy then decides whether the URL may be read at all: public
addresses or the allow-list, never loopback, private or metadata addresses, never
`storage://` (checked where the read connects, every redirect hop too).

Tiles need no sign-in (SamSyn's map sends none). They go through the tile pipeline: ETag and
304, the memory/Redis tier and the fast lane, for `TILE_MAX_AGE` seconds — as long as SamSyn
trusted its own answer to "is this URL a layer's?". A tile outside the raster is 204.
SamSyn's `colormap` is a colormap name (TiTiler's `colormap_name`); a JSON colormap, as
TiTiler takes it, works too.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from worldbase.apps.samsyn.raster import service as service_raster
from worldbase.core.auth import OptionalUser
from worldbase.core.cache import Cache
from worldbase.core.db import Session
from worldbase.core.errors import ErrorRead, Forbidden
from worldbase.core.fast_lane import CachePolicy
from worldbase.core.models import User
from worldbase.core.schemas import examples
from worldbase.core.services import ServicesDep
from worldbase.geo import raster
from worldbase.geo.classified import transparent_image
from worldbase.geo.raster import RenderParams, RenderQuery, RenderQueryDep
from worldbase.geo.tile_cache import TileCache, serve, tile_key
from worldbase.geo.tiles import validate_tile

router = APIRouter(prefix="/titiler", tags=["samsyn v1: titiler"])

NAMESPACE = "samsyn-titiler"
MAX_ZOOM = 24
TILE_MAX_AGE = 300
TILE_POLICY = CachePolicy(max_age=TILE_MAX_AGE, public=True, tags=(NAMESPACE,))
PNG = raster.media_type("png")

UrlQuery = Annotated[
    str,
    Query(
        description="The COG, as a SamSyn GeoTIFF layer names it (`source_config.url`)",
        min_length=1,
        max_length=2048,
    ),
]
PreviewSide = Annotated[int, Query(ge=16, le=raster.MAX_PREVIEW, description="Pixels")]

IMAGE = {"schema": {"type": "string", "format": "binary"}, "example": "(binary PNG)"}
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": IMAGE}, "description": "The image"},
    204: {"description": "Empty tile (outside the raster)"},
    304: {"description": "Not modified (If-None-Match)"},
}


class CogInfo(BaseModel):
    """rio-tiler's info with `bounds` in WGS84 degrees, as SamSyn's map and form use them
    (`native_bounds`/`native_crs`: in the file's own CRS)."""

    model_config = examples(
        {
            "bounds": [2.0, 51.0, 8.0, 56.0],
            "crs": "http://www.opengis.net/def/crs/EPSG/0/4326",
            "native_bounds": [222638.98, 6621293.72, 890555.93, 7558415.66],
            "native_crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            "minzoom": 5,
            "maxzoom": 9,
            "dtype": "float32",
            "nodata": None,
            "count": 1,
            "width": 1024,
            "height": 1024,
            "band_metadata": [["b1", {}]],
            "band_descriptions": [["b1", ""]],
            "colorinterp": ["gray"],
        }
    ) | ConfigDict(extra="allow")

    bounds: list[float] | None
    crs: str | None = None
    minzoom: int
    maxzoom: int
    dtype: str
    count: int
    width: int | None = None
    height: int | None = None


class BandStatistics(BaseModel):
    """One band's statistics (TiTiler's keys; SamSyn reads min/max/mean/std/percentiles)."""

    model_config = examples(
        {
            "min": 0.0,
            "max": 255.0,
            "mean": 118.2,
            "count": 65536.0,
            "sum": 7746355.0,
            "std": 52.1,
            "median": 120.0,
            "majority": 121.0,
            "minority": 3.0,
            "unique": 251.0,
            "histogram": [[1200, 5400], [0.0, 127.5, 255.0]],
            "valid_percent": 100.0,
            "masked_pixels": 0.0,
            "valid_pixels": 65536.0,
            "percentile_2": 12.0,
            "percentile_98": 230.0,
        }
    ) | ConfigDict(extra="allow")

    min: float | None
    max: float | None
    mean: float | None
    std: float | None = None


# SamSyn's admin form shows the preview of a URL it has just inspected as an <img>, which
# carries no token: a URL an admin read the info or statistics of may be previewed by anyone
# for this long (only that URL, only previews).
INSPECTED_TTL = 600


def _inspected_key(url: str) -> str:
    digest = hashlib.blake2b(service_raster.normalize_url(url).encode(), digest_size=16)
    return f"{NAMESPACE}:inspected:{digest.hexdigest()}"


async def _source(
    session: Session,
    url: str,
    user: User | None,
    *,
    admin_may: bool,
    cache: Cache | None = None,
    previewing: bool = False,
) -> str:
    """What to read for `url`: a layer's COG (its own spelling), or for an admin any URL
    (remembered in `cache` as inspected), or, for a preview, a recently inspected URL."""
    if admin_may and user is not None and user.is_admin:
        if cache is not None:
            await cache.set(_inspected_key(url), b"1", ttl=INSPECTED_TTL)
        return url
    found = await service_raster.registered_source(session, url=url)
    inspected = found is None and previewing and cache is not None
    if inspected and await cache.get(_inspected_key(url)):  # type: ignore[union-attr]
        return url
    if found is None:
        raise Forbidden(
            "URL not authorized: only GeoTIFF URLs of saved layers can be read here",
            detail={"url": url[:200]},
        )
    return found


def _asks_for_an_image(request: Request) -> bool:
    """Whether the caller is an <img>: its Accept names image types and not JSON (browsers
    send `image/avif,…,image/*,*/*;q=0.8`; fetch and HTTP clients `*/*` or JSON)."""
    accept = request.headers.get("accept", "").lower()
    return "image/" in accept and "json" not in accept


def _params(render: RenderQuery) -> RenderParams:
    """The render parameters; SamSyn's `colormap=viridis` is TiTiler's `colormap_name`."""
    colormap = render.colormap
    if colormap is not None and not colormap.lstrip().startswith(("{", "[")):
        render = dataclasses.replace(render, colormap=None, colormap_name=colormap)
    return render.params()


@router.get(
    "/tiles/{z}/{x}/{y}",
    summary="A 256-px PNG tile of a layer's COG (no sign-in; `url` must be a layer's)",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
async def titiler_tile(
    request: Request,
    z: int,
    x: int,
    y: int,
    url: UrlQuery,
    render: RenderQueryDep,
    session: Session,
    services: ServicesDep,
) -> Response:
    validate_tile(z, x, y, max_zoom=MAX_ZOOM)
    params = _params(render)
    source = await _source(session, url, None, admin_may=False)
    key = tile_key(
        namespace=NAMESPACE, layer_id="", version="", params=f"{source}|{params.cache_key()}",
        z=z, x=x, y=y, fmt="png",
    )  # fmt: skip
    settings = services.settings

    async def draw() -> bytes:
        tile = await raster.tile(source, settings=settings, z=z, x=x, y=y, params=params)
        return tile.content

    tiles = TileCache(cache=services.cache, storage=None, memory_ttl=TILE_MAX_AGE)
    return await serve(request, key, draw, TILE_POLICY, media_type=PNG, tiles=tiles)


@router.get(
    "/info",
    response_model=CogInfo,
    summary="A COG's metadata: WGS84 bounds, zooms, bands, dtype (admins: any URL)",
)
async def titiler_info(
    url: UrlQuery, user: OptionalUser, session: Session, services: ServicesDep
) -> dict[str, Any]:
    source = await _source(session, url, user, admin_may=True, cache=services.cache)
    data = await raster.info(source, settings=services.settings)
    data["native_bounds"], data["native_crs"] = data.get("bounds"), data.get("crs")
    data["bounds"] = data.pop("geographic_bounds", None)
    data["crs"] = "http://www.opengis.net/def/crs/EPSG/0/4326"
    return data


@router.get(
    "/statistics",
    response_model=dict[str, BandStatistics],
    summary="Per-band statistics of a COG, with the 2nd/98th percentiles (admins: any URL)",
)
async def titiler_statistics(
    url: UrlQuery,
    render: RenderQueryDep,
    user: OptionalUser,
    session: Session,
    services: ServicesDep,
) -> dict[str, Any]:
    params = _params(render)
    source = await _source(session, url, user, admin_may=True, cache=services.cache)
    return await raster.statistics(source, settings=services.settings, params=params)


@router.get(
    "/preview",
    summary="A PNG preview of a whole COG, its longest side max(width, height) (admins: any URL)",
    response_class=Response,
    responses={
        200: IMAGE_RESPONSES[200],
        403: {
            "model": ErrorRead,
            "content": {"image/png": IMAGE},
            "description": "Not a layer's URL nor one an admin inspected: the error shape, or a"
            " blank width x height PNG when the Accept header asks for an image (an <img>)",
        },
    },
)
async def titiler_preview(
    request: Request,
    url: UrlQuery,
    render: RenderQueryDep,
    user: OptionalUser,
    session: Session,
    services: ServicesDep,
    width: PreviewSide = 256,
    height: PreviewSide = 256,
) -> Response:
    params = _params(render)
    try:
        source = await _source(
            session, url, user, admin_may=True, cache=services.cache, previewing=True
        )
    except Forbidden:
        if not _asks_for_an_image(request):
            raise
        return Response(transparent_image(width, height), status_code=403, media_type=PNG)
    image = await raster.preview(
        source, settings=services.settings, params=params, max_size=max(width, height)
    )
    return Response(image.content, media_type=image.media_type)
