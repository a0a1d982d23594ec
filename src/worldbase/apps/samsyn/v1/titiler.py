"""`/api/v1/titiler` in SamSyn's shapes (adapter over the samsyn services)."""

from fastapi import APIRouter

router = APIRouter(prefix="/titiler", tags=["samsyn v1: titiler"])
