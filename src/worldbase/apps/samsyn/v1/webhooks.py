"""`/api/v1/webhooks/clerk`: core's Svix-verified Clerk handler with SamSyn's answers.

The same verification and user sync as `/api/webhooks/clerk` (`core.api.webhooks`), plus
what SamSyn adds: a `user.created` without an e-mail is refused (200 with `status: error`,
so Clerk does not retry bad data), and `user.deleted` first hands the user's maps over.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request

from worldbase.apps.samsyn.v1.users import hand_over_samsyn
from worldbase.core.api.webhooks import apply_clerk_event, clerk_profile, read_clerk_event
from worldbase.core.db import Session
from worldbase.core.schemas import Schema, examples
from worldbase.core.services import CacheDep, HubDep

router = APIRouter(prefix="/webhooks", tags=["samsyn v1: webhooks"])
MISSING_DATA = "Missing required user data (id or email)"


class ClerkWebhookAnswer(Schema):
    status: Literal["success", "error"]
    message: str | None = None

    model_config = examples({"status": "success"}, {"status": "error", "message": MISSING_DATA})


@router.post(
    "/clerk",
    response_model=ClerkWebhookAnswer,
    response_model_exclude_none=True,
    summary="Sync users from Clerk (Svix-signed), as SamSyn answers",
    responses={
        400: {"description": "Missing, stale or invalid Svix signature"},
        503: {"description": "CLERK_WEBHOOK_SECRET is not set"},
    },
)
async def clerk_webhook(
    request: Request, session: Session, hub: HubDep, cache: CacheDep
) -> ClerkWebhookAnswer:
    event = await read_clerk_event(request)
    settings = request.app.state.settings
    data = event["data"]
    if event.get("type") == "user.created" and (
        not data.get("id") or clerk_profile(data, settings)["email"] is None
    ):
        return ClerkWebhookAnswer(status="error", message=MISSING_DATA)
    await apply_clerk_event(
        session, event, settings=settings, hub=hub, cache=cache, on_delete=hand_over_samsyn
    )
    return ClerkWebhookAnswer(status="success")
