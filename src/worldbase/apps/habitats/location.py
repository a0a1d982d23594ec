"""Location look-ups: habitat codes near a point (raster window) and species ranges nearby.

Habitat codes are the distinct class values of the habitat raster's pixels touching the
geodesic circle of `habitat_radius_m` around the point (read from the raster window there,
never the whole raster), plus the `raster_value` of vector habitats within that radius.
Species are those with a range polygon within `species_radius_m` (geodesic, on either
database through `geo.spatial.within_distance`).
"""

from __future__ import annotations

import asyncio

from shapely.geometry import Point
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.habitats.models import Habitat, Species, SpeciesOccurrence
from worldbase.apps.habitats.raster import OWN_STORAGE
from worldbase.geo import classified
from worldbase.geo.spatial import within_distance
from worldbase.settings import Settings

DEFAULT_HABITAT_RADIUS_M = 1_000.0
DEFAULT_SPECIES_RADIUS_M = 10_000.0
MAX_HABITAT_RADIUS_M = 50_000.0
MAX_SPECIES_RADIUS_M = 500_000.0


async def species_near(
    session: AsyncSession, *, lon: float, lat: float, metres: float
) -> list[str]:
    """Scientific names (the name when there is none) of species with a range nearby, sorted."""
    name = func.coalesce(Species.scientific_name, Species.name)
    # Driven by the spatial index: the few matching ranges, then their species by key.
    rows = await session.scalars(
        select(name)
        .select_from(SpeciesOccurrence)
        .join(Species, Species.id == SpeciesOccurrence.species_id)
        .where(
            SpeciesOccurrence.is_range.is_(True),
            within_distance(SpeciesOccurrence.geometry, Point(lon, lat), metres),
        )
        .distinct()
        .order_by(name)
    )
    return list(rows)


async def vector_habitats_near(
    session: AsyncSession, *, lon: float, lat: float, metres: float
) -> list[int]:
    rows = await session.scalars(
        select(Habitat.raster_value).where(
            Habitat.raster_value.is_not(None),
            within_distance(Habitat.geometry, Point(lon, lat), metres),
        )
    )
    return [int(v) for v in rows if v is not None]


async def location_info(
    session: AsyncSession,
    *,
    settings: Settings,
    raster_url: str | None,
    lon: float,
    lat: float,
    habitat_radius_m: float,
    species_radius_m: float,
    vector_habitats: bool = True,
) -> dict[str, list[int] | list[str]]:
    """`{"habitats": [codes], "species": [names]}`: the raster read runs in the COG engine's
    thread pool while the database answers. `vector_habitats=False` skips the query for
    vector habitats (the caller knows there are none with a raster value)."""
    raster_task = None
    if raster_url is not None:
        raster_task = asyncio.ensure_future(
            classified.classes_near(
                raster_url,
                settings=settings,
                lon=lon,
                lat=lat,
                metres=habitat_radius_m,
                own_storage=OWN_STORAGE,
            )
        )
    try:
        species = await species_near(session, lon=lon, lat=lat, metres=species_radius_m)
        vector_codes = []
        if vector_habitats:
            vector_codes = await vector_habitats_near(
                session, lon=lon, lat=lat, metres=habitat_radius_m
            )
        raster_codes = await raster_task if raster_task is not None else []
    finally:
        if raster_task is not None and not raster_task.done():
            raster_task.cancel()
    return {"habitats": sorted(set(raster_codes) | set(vector_codes)), "species": species}
