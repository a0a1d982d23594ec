"""`/api/v1/gfw` in SamSyn's shapes (adapter over the samsyn services)."""

from fastapi import APIRouter

router = APIRouter(prefix="/gfw", tags=["samsyn v1: gfw"])
