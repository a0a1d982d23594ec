"""SamSyn's `/api/v1` routes, joined under one prefix (see the package docstring)."""

from fastapi import APIRouter

from worldbase.apps.samsyn.v1 import (
    comments,
    features,
    gfw,
    layers,
    maps,
    titiler,
    users,
    webhooks,
    wms,
    wms_servers,
)

router = APIRouter(prefix="/api/v1")
for area in (maps, layers, features, comments, users, webhooks, wms, wms_servers, titiler, gfw):
    router.include_router(area.router)
