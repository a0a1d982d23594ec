"""`/api/v1/comments` in SamSyn's shapes (adapter over the samsyn services)."""

from fastapi import APIRouter

router = APIRouter(prefix="/comments", tags=["samsyn v1: comments"])
