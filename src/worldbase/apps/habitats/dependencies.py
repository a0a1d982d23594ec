"""Existence checks that return the object; admin-only writes use core's `AdminUser`.

Habitats and species are public reads (the game lists them before sign-in); their tiles
need a valid bearer token (core's `TokenHolder`) and their occurrences a signed-in user
(`CurrentUser`), as the seed says.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query

from worldbase.apps.habitats import service, service_species
from worldbase.apps.habitats.exceptions import HabitatNotFound, SpeciesNotFound
from worldbase.apps.habitats.models import Habitat, Species
from worldbase.core.db import Session

# Ids are integers; anything past int32 cannot exist and is a 404, not a database error.
HabitatId = Annotated[int, Path(description="Habitat id", examples=[4])]
SpeciesId = Annotated[int, Path(description="Species id", examples=[7])]
MAX_ID = 2**31 - 1


async def habitat_for_read(id: HabitatId, session: Session) -> Habitat:
    if not 0 < id <= MAX_ID:
        raise HabitatNotFound()
    return await service.get_or_raise(session, habitat_id=id)


async def species_for_read(id: SpeciesId, session: Session) -> Species:
    if not 0 < id <= MAX_ID:
        raise SpeciesNotFound()
    return await service_species.get_or_raise(session, species_id=id)


HabitatDep = Annotated[Habitat, Depends(habitat_for_read)]
SpeciesDep = Annotated[Species, Depends(species_for_read)]
# Paging of the habitat and species lists.
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
