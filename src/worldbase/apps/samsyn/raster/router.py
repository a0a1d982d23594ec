"""Routes: GeoTIFF layer services — tiles (`.png/.webp/.jpeg/.tif/.npy`, `@2x`), info,
statistics, preview, point values, time steps (TileJSON is in routes_live, shared with
vector layers).

Render parameters use TiTiler's names; the layer's `tileParams` are the defaults and the
query overrides them. Temporal layers take `?time=` (an ISO date or time: the step that
contains it; the last step when left out; a step whose file is missing is a 404 naming
the time). Tiles carry `ETag` and `Cache-Control` and go through the two-tier tile cache, keyed
by the layer's configuration version, so a changed layer never serves stale tiles.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.status import HTTP_200_OK

from worldbase.apps.samsyn.events import layer_tiles_tag
from worldbase.apps.samsyn.raster import service as service_raster
from worldbase.apps.samsyn.raster.service import NAMESPACE, OWN_STORAGE, RasterLayer
from worldbase.core.auth import OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import BadInput
from worldbase.core.fast_lane import CachePolicy
from worldbase.core.services import Services, ServicesDep
from worldbase.geo import raster
from worldbase.geo.raster import RenderParams, RenderQuery, RenderQueryDep
from worldbase.geo.tile_cache import TileCache, serve, tile_key
from worldbase.geo.tiles import validate_tile
from worldbase.settings import Settings

router = APIRouter()

MAX_ZOOM = 24
TILE_MAX_AGE = 300  # seconds; clients revalidate with the ETag after that
MAX_TIMES_PAGE = 1000
TimeQuery = Annotated[
    str | None,
    Query(
        description="For temporal layers: an ISO date/time; the time step that contains it "
        "(`2023-06-15` on a monthly layer is June), the last step when left out",
        max_length=40,
    ),
]

IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "image/png": {
                "schema": {"type": "string", "format": "binary"},
                "example": "(binary PNG, 256x256 RGBA)",
            },
            "image/webp": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "The image",
    },
    204: {"description": "Empty tile (outside the raster)"},
    304: {"description": "Not modified (If-None-Match)"},
}


def _json(example: Any) -> dict[int | str, dict[str, Any]]:
    return {HTTP_200_OK: {"content": {"application/json": {"example": example}}}}


def layer_tile_policy(layer_id: uuid.UUID, *, is_global: bool, max_age: int) -> CachePolicy:
    """A layer's tiles: a library layer's are the same for everyone (public, and the fast
    lane keeps them until the layer changes); any other layer's are private."""
    return CachePolicy(max_age=max_age, public=is_global, tags=(layer_tiles_tag(layer_id),))


async def geotiff_tile(
    request: Request,
    *,
    layer: RasterLayer,
    services: Services,
    z: int,
    x: int,
    y: int,
    fmt: str,
    scale: int,
    query: RenderQuery,
    time: str | None,
) -> Response:
    """One tile of a GeoTIFF layer (also called by the plain `/tiles/{z}/{x}/{y}` route)."""
    service_raster.require_geotiff(layer)
    validate_tile(z, x, y, max_zoom=MAX_ZOOM)
    if scale not in (1, 2, 3, 4):
        raise BadInput("Tile scale must be 1 to 4 (e.g. @2x)")
    kind = raster.media_type(fmt)
    src = service_raster.source(layer, time=time)
    params = service_raster.render_params(layer, query)
    key = tile_key(
        namespace=NAMESPACE,
        layer_id=str(layer.id),
        version=layer.version,
        params=f"{params.cache_key()}|{src.url}",
        z=z,
        x=x,
        y=y,
        fmt=fmt,
        scale=scale,
    )

    async def render() -> bytes:
        tile = await service_raster.read(src, raster.tile(
            src.url, settings=services.settings, own_storage=OWN_STORAGE, z=z, x=x, y=y,
            params=params, fmt=fmt, scale=scale,
        ))  # fmt: skip
        return tile.content

    policy = layer_tile_policy(layer.id, is_global=layer.is_global, max_age=TILE_MAX_AGE)
    tiles = TileCache(cache=services.cache, storage=services.storage)
    return await serve(
        request, key, render, policy, media_type=kind, tiles=tiles, persist="second-hit"
    )


async def _layer(session: Session, id: uuid.UUID, user: OptionalUser) -> RasterLayer:
    layer = await service_raster.get_or_raise(session, layer_id=id, user=user)
    service_raster.require_geotiff(layer)
    return layer


@dataclass(frozen=True)
class LayerCog:
    """A readable GeoTIFF layer's COG (at `?time=`), its render parameters (the query over
    the layer's `tileParams`) and the settings its reads go through."""

    layer: RasterLayer
    source: service_raster.Source
    params: RenderParams
    settings: Settings


async def layer_cog(
    id: uuid.UUID,
    user: OptionalUser,
    session: Session,
    services: ServicesDep,
    render: RenderQueryDep,
    time: TimeQuery = None,
) -> LayerCog:
    layer = await _layer(session, id, user)
    src = service_raster.source(layer, time=time)
    params = service_raster.render_params(layer, render)
    return LayerCog(layer, src, params, services.settings)


LayerCogDep = Annotated[LayerCog, Depends(layer_cog)]


_TILES = "/api/layers/{id}/tiles/{z:int}/{x:int}/{y:int}"


# Where the path leaves out the format or the scale, PNG and 1 (and a query parameter).
@router.get(
    _TILES + "@{scale:int}x",
    summary="A GeoTIFF layer's high-resolution PNG tile (@2x = 512 px)",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
@router.get(
    _TILES + "@{scale:int}x.{fmt}",
    summary="A GeoTIFF layer's high-resolution tile (@2x = 512 px) in a format",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
@router.get(
    _TILES + ".{fmt}",
    summary="A GeoTIFF layer's tile in a format: png, webp, jpeg, tif or npy",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
async def layer_tile_variant(
    request: Request,
    id: uuid.UUID,
    z: int,
    x: int,
    y: int,
    user: OptionalUser,
    session: Session,
    services: ServicesDep,
    render: RenderQueryDep,
    time: TimeQuery = None,
    fmt: str = "png",
    scale: int = 1,
) -> Response:
    layer = await _layer(session, id, user)
    return await geotiff_tile(
        request, layer=layer, services=services, z=z, x=x, y=y, fmt=fmt, scale=scale,
        query=render, time=time,
    )  # fmt: skip


@router.get(
    "/api/layers/{id}/info",
    summary="A GeoTIFF layer's raster metadata: bounds, CRS, bands, dtype, overviews, zooms",
    description=(
        "rio-tiler's `info` of the layer's COG (at `time` for temporal layers), plus "
        "`geographic_bounds`, `minzoom`/`maxzoom`, `delivery`, the source `url` a "
        "`delivery: direct` client reads (null when not reachable from outside) and `time`."
    ),
    responses=_json(
        {
            "bounds": [2.0, 51.0, 8.0, 56.0],
            "crs": "http://www.opengis.net/def/crs/EPSG/0/4326",
            "dtype": "float32",
            "count": 1,
            "geographic_bounds": [2.0, 51.0, 8.0, 56.0],
            "minzoom": 5,
            "maxzoom": 9,
            "delivery": "tiles",
            "url": "https://data.example.org/bathymetry.tif",
            "time": None,
        }
    ),
)
async def layer_info(
    id: uuid.UUID,
    user: OptionalUser,
    session: Session,
    services: ServicesDep,
    time: TimeQuery = None,
) -> dict[str, Any]:
    layer = await _layer(session, id, user)
    src = service_raster.source(layer, time=time)
    data = await service_raster.read(
        src, raster.info(src.url, settings=services.settings, own_storage=OWN_STORAGE)
    )
    data["delivery"] = layer.delivery
    data["url"] = await service_raster.direct_url(layer, src, services.storage)
    data["time"] = src.time_iso
    return data


def _floats(name: str, value: str | None, *, count: int | None = None) -> list[float] | None:
    if value is None or value == "":
        return None
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise BadInput(
            f"Invalid {name}: comma-separated numbers",
            detail=[{"loc": ["query", name], "msg": "expected numbers", "type": "value_error"}],
        ) from None
    if count is not None and len(numbers) != count:
        raise BadInput(f"Invalid {name}: {count} numbers")
    return numbers


@router.get(
    "/api/layers/{id}/statistics",
    summary="Per-band statistics of a GeoTIFF layer (legend min/max, percentiles, histogram)",
    description=(
        "TiTiler's `/cog/statistics` for the layer's COG (at `time` for temporal layers): "
        "`categorical=true` counts pixel values (`c` limits to given categories); `p` lists "
        "percentiles (default 2,98); `histogram_bins` (a count or edges) and "
        "`histogram_range` shape the histogram; `max_size` bounds the pixels read."
    ),
    responses=_json(
        {
            "b1": {
                "min": -198.0,
                "max": -2.0,
                "mean": -45.1,
                "count": 65536.0,
                "sum": -2955673.0,
                "std": 31.2,
                "median": -38.0,
                "majority": -30.0,
                "minority": -198.0,
                "unique": 190.0,
                "histogram": [[120, 3400, 50210], [-198.0, -132.7, -67.3, -2.0]],
                "valid_percent": 100.0,
                "masked_pixels": 0.0,
                "valid_pixels": 65536.0,
                "percentile_2": -150.0,
                "percentile_98": -8.0,
            }
        }
    ),
)
async def layer_statistics(
    cog: LayerCogDep,
    categorical: Annotated[bool, Query(description="Count values instead")] = False,
    c: Annotated[list[float] | None, Query(description="Categories to count")] = None,
    p: Annotated[list[int] | None, Query(description="Percentiles, e.g. p=2&p=98")] = None,
    histogram_bins: Annotated[str | None, Query(description="Bin count or edges")] = None,
    histogram_range: Annotated[str | None, Query(description="`min,max`")] = None,
    max_size: Annotated[int, Query(description="Longest side read, pixels")] = 1024,
) -> dict[str, Any]:
    edges = _floats("histogram_bins", histogram_bins)
    bins: int | list[float] | None = None
    if edges is not None:
        if len(edges) == 1:
            if not edges[0].is_integer() or not 1 <= edges[0] <= 1000:
                raise BadInput("histogram_bins: a count between 1 and 1000, or bin edges")
            bins = int(edges[0])
        else:
            bins = edges
    hist_range = _floats("histogram_range", histogram_range, count=2)
    return await service_raster.read(cog.source, raster.statistics(
        cog.source.url,
        settings=cog.settings,
        own_storage=OWN_STORAGE,
        params=cog.params,
        categorical=categorical,
        categories=c,
        percentiles=p,
        bins=bins,
        hist_range=(hist_range[0], hist_range[1]) if hist_range else None,
        max_size=max_size,
    ))  # fmt: skip


@router.get(
    "/api/layers/{id}/preview",
    summary="A preview image of a GeoTIFF layer (thumbnails)",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
async def layer_preview(
    cog: LayerCogDep,
    format: Annotated[str, Query(description="png, webp or jpeg")] = "png",
    max_size: Annotated[int, Query(description="Longest side, pixels")] = 1024,
) -> Response:
    if format not in ("png", "webp", "jpeg", "jpg"):
        raise BadInput("format: png, webp or jpeg")
    image = await service_raster.read(cog.source, raster.preview(
        cog.source.url, settings=cog.settings, own_storage=OWN_STORAGE, params=cog.params,
        fmt=format, max_size=max_size,
    ))  # fmt: skip
    return Response(image.content, media_type=image.media_type)


@router.get(
    "/api/layers/{id}/point/{lon},{lat}",
    summary="A GeoTIFF layer's band values at a point (null where masked)",
    responses=_json(
        {"coordinates": [4.5, 54.0], "values": [-38.0], "band_names": ["b1"], "time": None}
    ),
)
async def layer_point(lon: float, lat: float, cog: LayerCogDep) -> dict[str, Any]:
    data = await service_raster.read(cog.source, raster.point(
        cog.source.url, settings=cog.settings, own_storage=OWN_STORAGE, lon=lon, lat=lat,
        params=cog.params,
    ))  # fmt: skip
    data["time"] = cog.source.time_iso
    return data


@router.get(
    "/api/layers/{id}/times",
    summary="The time steps of a temporal GeoTIFF layer (paginated, oldest first)",
    responses=_json(
        {
            "items": ["2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"],
            "total": 60,
            "limit": 2,
            "offset": 0,
            "resolution": "monthly",
            "start": "2020-01-01T00:00:00Z",
            "end": "2024-12-31T00:00:00Z",
        }
    ),
)
async def layer_times(
    id: uuid.UUID,
    user: OptionalUser,
    session: Session,
    limit: Annotated[int, Query(ge=1, le=MAX_TIMES_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    layer = await _layer(session, id, user)
    timeline = layer.timeline
    if timeline is None:
        return {
            "items": [], "total": 0, "limit": limit, "offset": offset,
            "resolution": None, "start": None, "end": None,
        }  # fmt: skip
    steps = timeline.page(offset=offset, limit=limit)
    return {
        "items": [service_raster.iso(s) for s in steps],
        "total": timeline.count(),
        "limit": limit,
        "offset": offset,
        "resolution": timeline.resolution,
        "start": service_raster.iso(timeline.start),
        "end": service_raster.iso(timeline.end),
    }


async def geotiff_tilejson(
    request: Request,
    *,
    layer: RasterLayer,
    services: Services,
    render: RenderQuery,
    time: str | None,
) -> dict[str, Any]:
    """TileJSON of a GeoTIFF layer's tiles (the query is carried into the tile URLs);
    `delivery: direct` layers also get the COG `url` (see `layer_info`)."""
    src = service_raster.source(layer, time=time)
    params = service_raster.render_params(layer, render)  # 4xx now rather than per tile
    query = request.url.query
    base = str(request.base_url).rstrip("/")
    tiles = f"{base}/api/layers/{layer.id}/tiles/{{z}}/{{x}}/{{y}}" + (f"?{query}" if query else "")
    data = await service_raster.read(src, raster.tilejson(
        src.url, settings=services.settings, own_storage=OWN_STORAGE, tiles_url=tiles,
        name=layer.name, params=params,
    ))  # fmt: skip
    data["delivery"] = layer.delivery
    data["url"] = await service_raster.direct_url(layer, src, services.storage)
    data["time"] = src.time_iso
    return data
