"""`/api/v1/wms-servers` in SamSyn's shapes (adapter over the samsyn services)."""

from fastapi import APIRouter

router = APIRouter(prefix="/wms-servers", tags=["samsyn v1: wms-servers"])
