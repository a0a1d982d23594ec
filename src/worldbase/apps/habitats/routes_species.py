"""Routes: species (public reads, admin writes) and their occurrences (signed-in callers)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from worldbase.apps.habitats import service_species
from worldbase.apps.habitats.dependencies import Limit, Offset, SpeciesDep
from worldbase.apps.habitats.routes_habitats import base_url, page
from worldbase.apps.habitats.schemas import (
    OccurrencePage,
    SpeciesCreate,
    SpeciesPage,
    SpeciesRead,
    SpeciesUpdate,
)
from worldbase.core.auth import AdminUser, CurrentUser, OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import NotAuthenticated
from worldbase.geo.geometry import parse_bbox

router = APIRouter()
GEOJSON = "application/geo+json"


def _feature_collection(features: list[Any], total: int) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": total,
        "numberReturned": len(features),
    }


@router.get("/species", response_model=SpeciesPage, summary="List species")
async def list_species(
    request: Request,
    session: Session,
    q: Annotated[
        str | None, Query(max_length=200, description="Text search in name, scientific name")
    ] = None,
    habitat_type: Annotated[
        str | None, Query(max_length=50, description="Only species with this habitat type")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await service_species.list(
        session, q=q, habitat_type=habitat_type, limit=limit, offset=offset
    )
    counts = await service_species.occurrence_counts(session, ids=[s.id for s in items])
    base = base_url(request)
    return page(
        [service_species.as_dict(s, count=counts.get(s.id, 0), base_url=base) for s in items],
        total,
        limit,
        offset,
    )


@router.post(
    "/species",
    response_model=SpeciesRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a species with its occurrence data (admin)",
    description="`occurrence_data` is a GeoJSON FeatureCollection, validated whole: the "
    "first bad feature fails the request (422 naming `features[i]`) and nothing is written. "
    "409 when the name is taken.",
)
async def create_species(
    request: Request, body: SpeciesCreate, session: Session, _: AdminUser
) -> dict[str, Any]:
    species, count = await service_species.create(session, values=body.model_dump())
    return service_species.as_dict(species, count=count, base_url=base_url(request))


INLINE_OCCURRENCES = 10_000


@router.get(
    "/species/{id}",
    response_model=SpeciesRead,
    summary="A species (with `?include=occurrence_data`, its occurrence FeatureCollection)",
)
async def get_species(
    request: Request,
    species: SpeciesDep,
    session: Session,
    user: OptionalUser,
    include: Annotated[
        Literal["occurrence_data"] | None,
        Query(description="`occurrence_data` adds the features (signed-in callers only)"),
    ] = None,
) -> dict[str, Any]:
    counts = await service_species.occurrence_counts(session, ids=[species.id])
    data = service_species.as_dict(
        species, count=counts.get(species.id, 0), base_url=base_url(request)
    )
    if include == "occurrence_data":
        if user is None:  # occurrences need a valid token, as their own endpoint does
            raise NotAuthenticated("Occurrence data needs a bearer token")
        features, total = await service_species.list_occurrences(
            session, species_id=species.id, bbox=None, limit=INLINE_OCCURRENCES, offset=0
        )
        data["occurrence_data"] = _feature_collection(features, total)
    return data


@router.put(
    "/species/{id}",
    response_model=SpeciesRead,
    summary="Update a species (admin); `occurrence_data` replaces every feature",
)
async def update_species(
    request: Request, body: SpeciesUpdate, species: SpeciesDep, session: Session, _: AdminUser
) -> dict[str, Any]:
    species, count = await service_species.update(
        session, species=species, values=body.model_dump(exclude_unset=True)
    )
    return service_species.as_dict(species, count=count, base_url=base_url(request))


@router.delete(
    "/species/{id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a species (admin)"
)
async def delete_species(species: SpeciesDep, session: Session, _: AdminUser) -> Response:
    await service_species.delete(session, species=species)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _page_url(request: Request, offset: int) -> str:
    return str(request.url.include_query_params(offset=offset))


@router.get(
    "/species/{id}/occurrences",
    response_model=OccurrencePage,
    summary="A species' occurrences as a GeoJSON FeatureCollection (signed-in; paginated)",
    description="Features intersecting `bbox` (all without it), in their original order, "
    "`limit` per page with `next`/`prev` links.",
    responses={200: {"content": {GEOJSON: {}}}},
)
async def list_occurrences(
    request: Request,
    species: SpeciesDep,
    session: Session,
    _: CurrentUser,
    bbox: Annotated[
        str | None,
        Query(
            description="minx,miny,maxx,maxy in degrees",
            max_length=200,
            examples=["10,50,11,51"],
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    box = parse_bbox(bbox) if bbox is not None else None
    features, total = await service_species.list_occurrences(
        session, species_id=species.id, bbox=box, limit=limit, offset=offset
    )
    links = [{"rel": "self", "href": str(request.url), "type": GEOJSON}]
    if offset + len(features) < total:
        links.append({"rel": "next", "href": _page_url(request, offset + limit), "type": GEOJSON})
    if offset > 0:
        links.append(
            {"rel": "prev", "href": _page_url(request, max(offset - limit, 0)), "type": GEOJSON}
        )
    return JSONResponse(
        {**_feature_collection(features, total), "links": links}, media_type=GEOJSON
    )
