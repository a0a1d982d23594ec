"""Domain errors of the habitats app (mapped to status codes by core.errors)."""

from __future__ import annotations

from worldbase.core.errors import Conflict, NotFound, ServiceUnavailable


class HabitatNotFound(NotFound):
    def __init__(self, message: str = "Habitat not found", **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class SpeciesNotFound(NotFound):
    def __init__(self, message: str = "Species not found", **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class DuplicateHabitat(Conflict):
    """Another habitat has this `iucn_code`."""


class DuplicateSpecies(Conflict):
    """Another species has this `name`."""


class NoHabitatRaster(ServiceUnavailable):
    """No habitat raster is configured (HABITAT_RASTER_URL) and none was seeded."""
