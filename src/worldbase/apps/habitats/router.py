"""HTTP routes of the habitats app, at its seed's paths (one router per area, joined here)."""

from fastapi import APIRouter

from worldbase.apps.habitats.routes_habitats import router as habitats_router
from worldbase.apps.habitats.routes_species import router as species_router

router = APIRouter()
router.include_router(habitats_router)
router.include_router(species_router)
