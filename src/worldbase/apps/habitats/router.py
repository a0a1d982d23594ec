"""HTTP routes of the habitats app, at its seed's paths (one router per area, joined here)."""

from fastapi import APIRouter

from worldbase.apps.habitats.routes_habitats import router as habitats_router
from worldbase.apps.habitats.routes_import import router as import_router
from worldbase.apps.habitats.routes_location import router as location_router
from worldbase.apps.habitats.routes_species import router as species_router
from worldbase.apps.habitats.routes_tiles import router as tiles_router

router = APIRouter()
# Tiles and imports first: `/habitats/tiles/...` and `/habitats/import` are not habitat ids.
router.include_router(tiles_router)
router.include_router(import_router)
router.include_router(habitats_router)
router.include_router(species_router)
router.include_router(location_router)
