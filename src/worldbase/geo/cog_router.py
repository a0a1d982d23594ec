"""TiTiler-compatible endpoints at `/cog/...`, behind the source allow-list.

titiler.core's `TilerFactory` provides the endpoints clients written for TiTiler call
(`/cog/info`, `/cog/statistics`, `/cog/tiles/{tms}/{z}/{x}/{y}[@{scale}x][.{format}]`,
`/cog/{tms}/tilejson.json`, `/cog/point/{lon},{lat}`, `/cog/preview`, `/cog/bounds`, ...)
with Worldbase's pieces plugged in:

- `url` is checked and resolved by `cog_source` (the source policy: public http(s) read
  through the policy relay, s3://, local files only under WORLDBASE_RASTER_DIRS; never
  `storage://` nor Worldbase's own bucket, whose objects are read only through their app);
- readers open read-only, GeoTIFF driver only, under Worldbase's GDAL environment
  (`CogReader`, the credentials for s3);
- errors leave in Worldbase's error shape (`CogErrorRoute`), and a tile outside the
  raster is `204`, as every empty tile here;
- the older TiTiler path `/cog/tiles/{z}/{x}/{y}` (no TileMatrixSet, as the SamSyn seed's
  frontend writes it) is served by Worldbase's own engine (`geo.raster`).

The POST endpoints (statistics of a posted GeoJSON), `bbox`/`feature` parts, `info.geojson`
and the HTML viewer are left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import attr
from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from rasterio.errors import RasterioError, RasterioIOError
from rio_tiler.errors import (
    InvalidColorFormat,
    InvalidColorMapName,
    PointOutsideBounds,
    RioTilerError,
    TileOutsideBounds,
)
from rio_tiler.models import ImageData, PointData
from starlette.status import HTTP_200_OK
from titiler.core.algorithm import BaseAlgorithm
from titiler.core.algorithm import algorithms as titiler_algorithms
from titiler.core.dependencies import DefaultDependency
from titiler.core.factory import TilerFactory

from worldbase.core.errors import BadInput, DomainError, NotFound
from worldbase.core.fast_lane import CachePolicy
from worldbase.geo import raster, raster_readers
from worldbase.geo.raster import RenderParams, RenderQueryDep
from worldbase.geo.raster_readers import SafeReader, check_bands
from worldbase.geo.raster_sources import gdal_env, gdal_options, gdal_path, resolve_source
from worldbase.geo.tile_cache import serve, tile_key
from worldbase.settings import Settings

TILE_POLICY = CachePolicy(max_age=3600, public=True)
EMPTY_TILE_POLICY = CachePolicy(max_age=60, public=True)
PNG = raster.media_type("png")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def cog_source(
    request: Request,
    url: Annotated[
        str,
        Query(
            description="The COG: http(s):// (public addresses, or WORLDBASE_SOURCE_ALLOWLIST), "
            "s3://bucket/key or a path under WORLDBASE_RASTER_DIRS",
            max_length=2048,
        ),
    ],
) -> str:
    """`url` checked by the source policy and resolved to what GDAL opens."""
    settings = _settings(request)
    return gdal_path(resolve_source(url, settings), settings)


def cog_environment(request: Request) -> dict[str, Any]:
    # Plain `def`: TiTiler types it so; FastAPI runs it in the thread pool with the endpoint.
    return gdal_options(_settings(request))


@attr.s
class CogReader(SafeReader):
    """rio-tiler's Reader, opened under Worldbase's GDAL environment and AWS session."""

    settings: Settings | None = attr.ib(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.settings is None:
            super().__attrs_post_init__()
        else:
            with gdal_env(self.settings):
                super().__attrs_post_init__()
        raster_readers.require_crs(self, str(self.input))

    def _check(self, indexes: Any, expression: str | None) -> None:
        # GDAL would return an empty band for an index past the last one: 422 instead.
        assert self.dataset is not None
        wanted = RenderParams(
            bidx=(indexes,) if isinstance(indexes, int) else tuple(indexes or ()),
            expression=expression,
        )
        check_bands(wanted, int(self.dataset.count))

    def part(self, *args: Any, **kwargs: Any) -> ImageData:
        self._check(kwargs.get("indexes"), kwargs.get("expression"))
        return super().part(*args, **kwargs)

    def read(self, *args: Any, **kwargs: Any) -> ImageData:
        self._check(kwargs.get("indexes"), kwargs.get("expression"))
        return super().read(*args, **kwargs)

    def point(self, *args: Any, **kwargs: Any) -> PointData:
        self._check(kwargs.get("indexes"), kwargs.get("expression"))
        return super().point(*args, **kwargs)


@dataclass
class CogReaderParams(DefaultDependency):
    """Hands the settings to `CogReader` (TiTiler passes these as reader keywords)."""

    request: Request

    def as_dict(self, exclude_none: bool = True) -> dict[str, Any]:
        return {"settings": _settings(self.request)}


ALGORITHMS = titiler_algorithms.data


def post_process(
    algorithm: Annotated[
        Literal[tuple(ALGORITHMS)] | None,  # type: ignore[valid-type]
        Query(description="Algorithm name"),
    ] = None,
    algorithm_params: Annotated[
        str | None,
        Query(
            description='The algorithm\'s parameters, a JSON object: `{"azimuth": 315}`',
            max_length=2000,
        ),
    ] = None,
) -> BaseAlgorithm | None:
    """TiTiler's algorithm dependency, strict: its own passes `null`, a list or a number
    straight to the algorithm's constructor (a TypeError, so a 500)."""
    if algorithm is None:
        return None
    params: Any = {}
    if algorithm_params is not None:
        try:
            params = json.loads(algorithm_params)
        except ValueError:
            raise BadInput("algorithm_params must be a JSON object") from None
        if not isinstance(params, dict):
            raise BadInput("algorithm_params must be a JSON object")
    try:
        return ALGORITHMS[algorithm](**params)
    except ValidationError as exc:
        fields = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise BadInput(f"Invalid algorithm_params for {algorithm}", detail=fields) from None


def _domain_error(exc: Exception, source: str) -> DomainError | None:
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, PointOutsideBounds):
        return NotFound("The point is outside the raster's bounds")
    if isinstance(exc, InvalidColorMapName | InvalidColorFormat):
        return BadInput(f"Invalid colormap: {exc}")
    if isinstance(exc, RasterioIOError | RasterioError):
        return raster_readers.open_error(source, exc)
    if isinstance(exc, RioTilerError | IndexError):
        return BadInput(f"Invalid request for this raster: {exc}")
    return None


def _check_tile(params: dict[str, Any]) -> None:
    """z/x/y within the TileMatrixSet (TiTiler would extrapolate past its last zoom)."""
    if "z" not in params or "tileMatrixSetId" not in params:
        return
    try:
        z, x, y = int(params["z"]), int(params["x"]), int(params["y"])
    except (KeyError, ValueError):
        raise BadInput("Tile z, x and y must be integers") from None
    raster.validate_tms_tile(raster.tms_or_raise(str(params["tileMatrixSetId"])), z, x, y)


class CogErrorRoute(APIRoute):
    """Routes whose rio-tiler/rasterio errors become domain errors (the error shape)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            _check_tile(request.path_params)
            try:
                return await handler(request)
            except TileOutsideBounds:
                return EMPTY_TILE_POLICY.apply(request, Response(status_code=204))
            except Exception as exc:
                mapped = _domain_error(exc, request.query_params.get("url", ""))
                if mapped is None or mapped is exc:
                    raise
                raise mapped from None

        return guarded


EXAMPLES: dict[str, Any] = {
    "/bounds": {"bounds": [2.0, 51.0, 8.0, 56.0], "crs": "EPSG:4326"},
    "/info": {"bounds": [2.0, 51.0, 8.0, 56.0], "dtype": "uint8", "count": 3},
    "/info.geojson": {"type": "Feature", "geometry": None, "properties": {}},
    "/statistics": {"b1": {"min": 0.0, "max": 255.0, "mean": 127.5}},
    "/tileMatrixSets": {"tileMatrixSets": [{"id": "WebMercatorQuad"}]},
    "/point/{lon},{lat}": {"coordinates": [4.5, 54.0], "values": [12.0], "band_names": ["b1"]},
}


def _document(route: APIRoute) -> None:
    """Examples for the OpenAPI responses (Worldbase documents every operation with one)."""
    path = route.path.removeprefix("/cog")
    ok = route.responses.setdefault(HTTP_200_OK, {})
    content = ok.setdefault("content", {})
    if not content:
        content["application/json"] = {}
    for media, spec in content.items():
        if "example" in spec:
            continue
        if media.startswith(("image/", "application/x-binary")):
            spec["example"] = "(binary image)"
        elif "tilejson" in path:
            spec["example"] = {"tilejson": "3.0.0", "tiles": ["https://.../{z}/{x}/{y}"]}
        else:
            spec["example"] = EXAMPLES.get(path, {})
    if not route.summary:
        route.summary = (route.description or route.name).strip().split("\n")[0][:120]


def build_router() -> APIRouter:
    factory = TilerFactory(
        router=APIRouter(route_class=CogErrorRoute),
        reader=CogReader,
        reader_dependency=CogReaderParams,
        path_dependency=cog_source,
        environment_dependency=cog_environment,
        process_dependency=post_process,
        router_prefix="/cog",
        add_part=False,
        add_viewer=False,
    )
    router = APIRouter(route_class=CogErrorRoute)
    router.add_api_route(
        "/tiles/{z:int}/{x:int}/{y:int}",
        legacy_tile,
        methods=["GET"],
        summary="A WebMercatorQuad PNG tile (TiTiler's older path, as the SamSyn seed uses it)",
        response_class=Response,
        responses={
            200: {"content": {"image/png": {"example": "(binary PNG)"}}, "description": "Tile"},
            204: {"description": "Empty tile (outside the raster)"},
        },
    )
    for route in factory.router.routes:
        # GeoJSON info is left out too: its errors would be documented as GeoJSON.
        if isinstance(route, APIRoute) and route.methods == {"GET"} and "geojson" not in route.path:
            router.routes.append(route)
    for route in router.routes:
        if isinstance(route, APIRoute):
            _document(route)
    return router


async def legacy_tile(
    request: Request,
    z: int,
    x: int,
    y: int,
    url: Annotated[str, Query(description="The COG (see the other /cog endpoints)")],
    render: RenderQueryDep,
) -> Response:
    settings = _settings(request)
    params = render.params()
    key = tile_key(
        namespace="cog", layer_id="", version="", params=f"{url}|{params.cache_key()}",
        z=z, x=x, y=y, fmt="png",
    )  # fmt: skip

    async def draw() -> bytes:
        tile = await raster.tile(url, settings=settings, z=z, x=x, y=y, params=params)
        return tile.content

    # Not kept by Worldbase (what is at `url` may change; clients revalidate with the ETag).
    return await serve(request, key, draw, TILE_POLICY, media_type=PNG, tiles=None)


router = build_router()
