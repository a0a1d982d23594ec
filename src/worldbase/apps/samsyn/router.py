"""HTTP routes of the samsyn app, at its seed's paths (one router per area, joined here)."""

from fastapi import APIRouter

from worldbase.apps.samsyn.comments.router import router as comments_router
from worldbase.apps.samsyn.features.router import router as features_router
from worldbase.apps.samsyn.imports.router import router as import_router
from worldbase.apps.samsyn.layers.router import router as layers_router
from worldbase.apps.samsyn.maps.router import router as maps_router
from worldbase.apps.samsyn.tiles.router import router as live_router
from worldbase.apps.samsyn.uploads.router import router as upload_router
from worldbase.apps.samsyn.v1.router import router as v1_router

router = APIRouter()
# Order matters where paths overlap: `/api/maps/{id}/layers/reorder` before `{layer_id}`.
router.include_router(maps_router)
router.include_router(live_router)
router.include_router(import_router)
router.include_router(upload_router)
router.include_router(layers_router)
router.include_router(features_router)
router.include_router(comments_router)
# SamSyn's own frontend API (`/api/v1/...`), an adapter over the same services.
router.include_router(v1_router)
