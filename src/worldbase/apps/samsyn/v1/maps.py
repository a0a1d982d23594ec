"""`/api/v1/maps` in SamSyn's shapes (adapter over the samsyn services)."""

from fastapi import APIRouter

router = APIRouter(prefix="/maps", tags=["samsyn v1: maps"])
