"""`/api/v1/wms` in SamSyn's shapes: a WMS's capabilities, GetFeatureInfo and the
properties of a layer's features, fetched by the server (no CORS for the browser).

Every URL passes the source policy (public addresses, or `WORLDBASE_SOURCE_ALLOWLIST`;
403 otherwise, on every redirect hop too). Capabilities are cached for ten minutes per URL.
Signed-in users may ask any allowed WMS; anonymous visitors only ask GetFeatureInfo of
a WMS that a public layer or the server registry already names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from worldbase.apps.samsyn.v1.wms_shapes import DiscoveredProperties, FeatureInfo, WmsCapabilities
from worldbase.apps.samsyn.wms import capabilities, feature_info
from worldbase.apps.samsyn.wms import servers as service_servers
from worldbase.core.auth import CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import Forbidden
from worldbase.core.services import ServicesDep

router = APIRouter(prefix="/wms", tags=["samsyn v1: wms"])

WmsUrl = Annotated[
    str,
    Query(
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="The WMS's base URL (its own query parameters are kept)",
    ),
]
Version = Annotated[Literal["1.1.1", "1.3.0"], Query(description="WMS version")]


@router.get(
    "/capabilities",
    response_model=WmsCapabilities,
    summary="A WMS's capabilities: service, formats and layers (signed in)",
)
async def get_capabilities(url: WmsUrl, user: CurrentUser, services: ServicesDep) -> Any:
    return await capabilities.read(url, settings=services.settings, cache=services.cache)


@router.get(
    "/feature-info",
    response_model=FeatureInfo,
    summary="GetFeatureInfo at a pixel of a map view, through the server",
    description=(
        "`bbox` is west,south,east,north in EPSG:4326; `x`/`y` a pixel of the "
        "`width`x`height` view. JSON answers are passed on, HTML tables become `features`, "
        "anything else `{type: text, content}`. Anonymous callers may only ask a WMS that a "
        "public layer or the WMS server registry names (403 otherwise)."
    ),
)
async def get_feature_info(
    url: WmsUrl,
    layers: Annotated[str, Query(min_length=1, max_length=1000)],
    bbox: Annotated[str, Query(max_length=200, description="west,south,east,north")],
    width: Annotated[int, Query(ge=1, le=4096)],
    height: Annotated[int, Query(ge=1, le=4096)],
    x: Annotated[int, Query(ge=0, le=4095)],
    y: Annotated[int, Query(ge=0, le=4095)],
    session: Session,
    user: OptionalUser,
    services: ServicesDep,
    info_format: Annotated[
        str, Query(max_length=100, pattern=r"^[\w.+-]+/[\w.+-]+(;[ \w.+=-]*)?$")
    ] = "text/html",
    time: Annotated[str | None, Query(max_length=100)] = None,
    version: Version = "1.3.0",
    cql_filter: Annotated[str | None, Query(max_length=4000)] = None,
) -> Any:
    if user is None and not await service_servers.is_known(session, url=url):
        raise Forbidden("Sign in to query a WMS that no public layer uses")
    query = feature_info.FeatureInfoQuery(
        url=url,
        layers=layers,
        bbox=feature_info.parse_bbox(bbox),
        width=width,
        height=height,
        x=x,
        y=y,
        info_format=info_format,
        version=version,
        time=time,
        cql_filter=cql_filter,
    )
    return await feature_info.get(query, settings=services.settings)


@router.get(
    "/discover-properties",
    response_model=DiscoveredProperties,
    summary="The properties of a WMS layer's features, from a sample GetFeatureInfo",
    description=(
        "Best effort: a WMS that fails gives an empty list with `error` (200); a URL the "
        "source policy refuses is 403."
    ),
)
async def discover_properties(
    url: WmsUrl,
    layer: Annotated[str, Query(min_length=1, max_length=1000)],
    user: CurrentUser,
    services: ServicesDep,
    bounds: Annotated[
        str | None, Query(max_length=200, description="The layer's west,south,east,north")
    ] = None,
    version: Version = "1.3.0",
) -> Any:
    query = feature_info.sample_query(url, layer, bounds, version)
    return await feature_info.discover_properties(query, settings=services.settings)
