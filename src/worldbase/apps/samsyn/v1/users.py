"""`/api/v1/users` in SamSyn's shapes (adapter over the samsyn services)."""

from fastapi import APIRouter

router = APIRouter(prefix="/users", tags=["samsyn v1: users"])
