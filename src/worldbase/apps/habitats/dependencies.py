"""Existence checks that return the object; admin-only writes use core's `AdminUser`.

Habitats and species are public reads (the game lists them before sign-in); their tiles
and occurrences need a valid bearer token (`CurrentUser`), as the seed says.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from fastapi.security import HTTPAuthorizationCredentials
from starlette.requests import HTTPConnection

from worldbase.apps.habitats import service, service_species, tile_state
from worldbase.apps.habitats.exceptions import HabitatNotFound, SpeciesNotFound
from worldbase.apps.habitats.models import Habitat, Species
from worldbase.core.auth import bearer_scheme
from worldbase.core.db import Session
from worldbase.core.errors import NotAuthenticated
from worldbase.core.services import CacheDep

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


async def tile_reader(
    connection: HTTPConnection,
    session: Session,
    cache: CacheDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """A valid bearer token (HS256 game token, ours, or JWKS); verified tokens are cached
    for a few seconds (see `tile_state`), so a cached tile costs no query."""
    if credentials is None:
        if connection.headers.get("authorization"):
            raise NotAuthenticated("Authorization header must be 'Bearer <token>'")
        raise NotAuthenticated("Not authenticated")
    settings = connection.app.state.settings
    await tile_state.check_token(session, cache, token=credentials.credentials, settings=settings)


HabitatDep = Annotated[Habitat, Depends(habitat_for_read)]
TileReader = Annotated[None, Depends(tile_reader)]
SpeciesDep = Annotated[Species, Depends(species_for_read)]
