"""HTTP routes of the bestiary app, at its seed's paths (one router per area, joined here)."""

from fastapi import APIRouter

from worldbase.apps.bestiary.routes_characters import router as characters_router
from worldbase.apps.bestiary.routes_exports import router as exports_router
from worldbase.apps.bestiary.routes_favorites import router as favorites_router
from worldbase.apps.bestiary.routes_reconstruct import router as reconstruct_router

router = APIRouter()
router.include_router(characters_router)
router.include_router(favorites_router)
router.include_router(exports_router)
router.include_router(reconstruct_router)
