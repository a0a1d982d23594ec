"""`/api/v1/wms` in SamSyn's shapes (adapter over the samsyn services)."""

from fastapi import APIRouter

router = APIRouter(prefix="/wms", tags=["samsyn v1: wms"])
