"""The hot reads of public maps, matched ahead of every router (see `worldbase.app`):
a vector tile and a page of features.

Why: at z14 a tile query takes ~1 ms and a 1,000-feature page ~5 ms in PostgreSQL, while
FastAPI's route scan (microseconds per route passed, a millisecond over the whole table on
this kind of machine), its dependency resolution (the caller, a session, the cache, and for
tiles TiTiler's dozen render parameters that only GeoTIFF/WMS tiles use) and the ORM load of
the layer cost as much again. A plain, well-formed request is answered here with the same
services, the same permission check and the same rendering as the full route; anything else
(an unknown or malformed parameter, another layer type, a malformed Authorization header,
HEAD, SQLite for feature pages) goes to the full route, which also documents the path and
words its errors. An anonymous request for a library layer whose row is cached opens no
session: the read itself is its only round trip (`service_tiles.public_tile_layer`).
"""

from __future__ import annotations

import re
import uuid
from typing import Literal
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from worldbase.apps.samsyn.features import service as service_features
from worldbase.apps.samsyn.features.router import (
    MAX_BBOX_CHARS,
    MAX_OFFSET,
    MAX_PAGE,
    features_response,
)
from worldbase.apps.samsyn.features.router import router as features_router
from worldbase.apps.samsyn.models import SourceType
from worldbase.apps.samsyn.raster import service as service_raster
from worldbase.apps.samsyn.tiles import service as service_tiles
from worldbase.apps.samsyn.tiles.router import MAX_ZOOM, vector_tile
from worldbase.apps.samsyn.tiles.router import router as live_router
from worldbase.core.auth import authenticate_token
from worldbase.core.services import Services, services_of
from worldbase.geo.geometry import parse_bbox
from worldbase.geo.tiles import validate_tile

_NUMBER = re.compile(r"[0-9]{1,9}")


class LayerFastPath:
    """A GET on one vector layer, ahead of its full route (`full`), which gets the rest."""

    def __init__(self, full: APIRoute) -> None:
        self.full = full

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        token = _bearer(request)
        try:
            layer_id = uuid.UUID(scope["path_params"]["id"])
        except ValueError:
            layer_id = None
        if scope["method"] != "GET" or token is False or layer_id is None:
            await self.full.handle(scope, receive, send)
            return
        services = services_of(request)
        params = self.params(request, services)
        if params is None:
            await self.full.handle(scope, receive, send)
            return
        layer = service_tiles.public_tile_layer(layer_id) if token is None else None
        if layer is None:
            layer = await _readable_layer(services, layer_id, token)
        if layer is None or layer.source_type != SourceType.vector:
            await self.full.handle(scope, receive, send)
            return
        response = await self.answer(request, services, layer, params)
        await response(scope, receive, send)

    def params(self, request: Request, services: Services) -> dict[str, str] | None:
        """The query parameters if this path serves the request; None: the full route does."""
        raise NotImplementedError

    async def answer(
        self,
        request: Request,
        services: Services,
        layer: service_tiles.TileLayer,
        params: dict[str, str],
    ) -> Response:
        raise NotImplementedError


class VectorTileFastPath(LayerFastPath):
    """`GET /api/layers/{id}/tiles/{z}/{x}/{y}` of a vector layer, with no query string."""

    def params(self, request: Request, services: Services) -> dict[str, str] | None:
        return None if request.scope["query_string"] else {}

    async def answer(
        self,
        request: Request,
        services: Services,
        layer: service_tiles.TileLayer,
        params: dict[str, str],
    ) -> Response:
        path = request.scope["path_params"]
        z, x, y = int(path["z"]), int(path["x"]), int(path["y"])
        validate_tile(z, x, y, max_zoom=MAX_ZOOM)
        return await vector_tile(
            request, db=services.db, cache=services.cache, layer=layer, z=z, x=x, y=y
        )


class FeaturePageFastPath(LayerFastPath):
    """`GET /api/layers/{id}/features` on PostgreSQL, `bbox`/`limit`/`offset` at most once
    each and within the full route's bounds, read through the read pool."""

    def params(self, request: Request, services: Services) -> dict[str, str] | None:
        if services.db.is_sqlite:
            return None
        query = parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
        values = dict(query)  # decoded as Starlette decodes it for the full route
        if len(values) != len(query) or not values.keys() <= {"bbox", "limit", "offset"}:
            return None
        limit, offset = values.get("limit", "1000"), values.get("offset", "0")
        if not (_NUMBER.fullmatch(limit) and _NUMBER.fullmatch(offset)):
            return None
        if not (
            1 <= int(limit) <= MAX_PAGE
            and int(offset) <= MAX_OFFSET
            and len(values.get("bbox", "")) <= MAX_BBOX_CHARS
        ):
            return None
        return values

    async def answer(
        self,
        request: Request,
        services: Services,
        layer: service_tiles.TileLayer,
        params: dict[str, str],
    ) -> Response:
        limit, offset = int(params.get("limit", "1000")), int(params.get("offset", "0"))
        box = parse_bbox(params["bbox"]) if "bbox" in params else None
        page = await service_features.list_on_read_pool(
            services.db, layer_id=layer.id, bbox=box, limit=limit, offset=offset
        )
        return features_response(request, page, limit=limit, offset=offset)


async def _readable_layer(
    services: Services, layer_id: uuid.UUID, token: str | None
) -> service_tiles.TileLayer | None:
    """The layer if the caller may read it (`NotFound` otherwise); None for a layer known
    here to be raster or WMS (the full routes serve those)."""
    if service_raster.cached_type(layer_id) not in (None, SourceType.vector):
        return None
    async with services.db.sessionmaker() as session:
        user = None
        if token is not None:
            user = await authenticate_token(session, token=token, settings=services.settings)
        return await service_tiles.tile_layer(session, layer_id=layer_id, user=user)


def _bearer(request: Request) -> str | Literal[False] | None:
    """The bearer token; None without an Authorization header; False when it is malformed."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else False


def _full_route(routes: list[BaseRoute], path: str) -> APIRoute:
    return next(
        r
        for r in routes
        if isinstance(r, APIRoute) and r.path == path and "GET" in (r.methods or ())
    )


# Digits only for z/x/y: `.../{y}.webp` and other shapes go on to the routes that serve them.
priority_routes: list[BaseRoute] = [
    Route(
        "/api/layers/{id}/tiles/{z:int}/{x:int}/{y:int}",
        VectorTileFastPath(_full_route(live_router.routes, "/api/layers/{id}/tiles/{z}/{x}/{y}")),
        methods=["GET"],
        include_in_schema=False,
    ),
    Route(
        "/api/layers/{id}/features",
        FeaturePageFastPath(_full_route(features_router.routes, "/api/layers/{id}/features")),
        methods=["GET"],
        include_in_schema=False,
    ),
]
