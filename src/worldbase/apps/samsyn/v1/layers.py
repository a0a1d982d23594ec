"""`/api/v1/layers` in SamSyn's shapes (adapter over the samsyn services)."""

from fastapi import APIRouter

router = APIRouter(prefix="/layers", tags=["samsyn v1: layers"])
