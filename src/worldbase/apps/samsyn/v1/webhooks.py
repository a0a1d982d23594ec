"""`/api/v1/webhooks` in SamSyn's shapes (adapter over the samsyn services)."""

from fastapi import APIRouter

router = APIRouter(prefix="/webhooks", tags=["samsyn v1: webhooks"])
