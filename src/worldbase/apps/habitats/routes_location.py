"""Route: what is near a point on the globe (habitat codes and species), for the game."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from worldbase.apps.habitats import location, tile_state
from worldbase.apps.habitats.raster import raster_url
from worldbase.apps.habitats.schemas import LocationInfoRead
from worldbase.core.db import Session
from worldbase.core.services import CacheDep, StorageDep

router = APIRouter()


@router.get(
    "/api/location_info/",
    response_model=LocationInfoRead,
    summary="Habitat codes within 1 km and species whose ranges lie within 10 km of a point",
    description="Habitat codes are read from the habitat raster's window around the point "
    "(plus vector habitats); species ranges are matched with a geodesic buffer, correct at "
    "any latitude. Radii are adjustable: `habitat_radius_m` up to "
    f"{location.MAX_HABITAT_RADIUS_M:.0f} m, `species_radius_m` up to "
    f"{location.MAX_SPECIES_RADIUS_M:.0f} m. Public, like the habitat and species lists.",
)
async def location_info(
    request: Request,
    session: Session,
    storage: StorageDep,
    cache: CacheDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude", examples=[10.0])],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude", examples=[50.0])],
    habitat_radius_m: Annotated[
        float, Query(gt=0, le=location.MAX_HABITAT_RADIUS_M)
    ] = location.DEFAULT_HABITAT_RADIUS_M,
    species_radius_m: Annotated[
        float, Query(gt=0, le=location.MAX_SPECIES_RADIUS_M)
    ] = location.DEFAULT_SPECIES_RADIUS_M,
) -> dict[str, Any]:
    settings = request.app.state.settings
    url = await raster_url(settings, storage)
    # The (cached) habitat list says whether any vector habitat could answer: most worlds
    # have none, and then the look-up costs one query.
    habitats = await tile_state.tile_habitats(session, cache)
    vector = any(h.has_geometry and h.raster_value is not None for h in habitats)
    return await location.location_info(
        session,
        settings=settings,
        raster_url=url,
        lon=lon,
        lat=lat,
        habitat_radius_m=habitat_radius_m,
        species_radius_m=species_radius_m,
        vector_habitats=vector,
    )
