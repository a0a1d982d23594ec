"""Core routes under /api/webhooks: Clerk's user events, signed by Svix.

- Not configured (`CLERK_WEBHOOK_SECRET` unset or unusable): 503.
- Missing, malformed, stale (over 5 minutes, Svix's replay window) or wrong signature: 400,
  which Svix treats as a failed delivery and retries.
- `user.created` / `user.updated` upsert the user by Clerk id; `user.deleted` deactivates it
  and clears its personal data (the row stays, because apps' data will point at it).
- Every event is idempotent; unknown event types are acknowledged with 200 and ignored.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from svix.webhooks import Webhook, WebhookVerificationError

from worldbase.core import users
from worldbase.core.db import Session
from worldbase.core.errors import DomainError, ServiceUnavailable
from worldbase.core.schemas import web_url_or_none
from worldbase.core.services import CacheDep, HubDep
from worldbase.settings import Settings

log = logging.getLogger("worldbase.webhooks")
router = APIRouter()


class InvalidSignature(DomainError):
    status_code = 400


class WebhookResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ok", "event": "user.created", "user_id": "user_2x"}]
        }
    )

    status: Literal["ok", "ignored"]
    event: str
    user_id: str | None = None


def _verifier(settings: Settings) -> Webhook:
    secret = settings.clerk_webhook_secret
    if not secret:
        raise ServiceUnavailable("Clerk webhooks are not configured (CLERK_WEBHOOK_SECRET)")
    try:
        return Webhook(secret)
    except Exception as exc:  # not base64 / empty: a configuration error, not the caller's
        log.error("CLERK_WEBHOOK_SECRET is not a valid Svix secret")
        raise ServiceUnavailable("Clerk webhooks are misconfigured") from exc


def _verified_event(request: Request, body: bytes) -> dict[str, Any]:
    verifier = _verifier(request.app.state.settings)
    try:
        verifier.verify(body, dict(request.headers))
        event = json.loads(body)
    except (WebhookVerificationError, ValueError) as exc:
        # ValueError also covers malformed signature headers and non-UTF-8 bodies.
        raise InvalidSignature("Invalid webhook signature", detail=str(exc)) from exc
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        raise InvalidSignature("Webhook payload is not a Clerk event")
    return event


def _primary_email(data: dict[str, Any]) -> str | None:
    primary = data.get("primary_email_address_id")
    addresses = [a for a in data.get("email_addresses") or [] if isinstance(a, dict)]
    for address in addresses:
        if address.get("id") == primary:
            return _text(address.get("email_address"), 320)
    return _text(addresses[0].get("email_address"), 320) if addresses else None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _full_name(data: dict[str, Any]) -> str | None:
    parts = [data.get("first_name"), data.get("last_name")]
    name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return _text(name or data.get("username"), 255)


@router.post(
    "/clerk",
    response_model=WebhookResult,
    summary="Sync users from Clerk (Svix-signed)",
    responses={
        400: {"description": "Missing, stale or invalid Svix signature"},
        503: {"description": "CLERK_WEBHOOK_SECRET is not set"},
    },
)
async def clerk_webhook(
    request: Request, session: Session, hub: HubDep, cache: CacheDep
) -> WebhookResult:
    # The signature covers the exact bytes, so the body is read raw, not parsed by FastAPI.
    event = _verified_event(request, await request.body())
    kind = str(event.get("type", ""))
    data = event["data"]
    subject = data.get("id")
    known = kind in ("user.created", "user.updated", "user.deleted")
    if not known or not isinstance(subject, str) or not 0 < len(subject) <= 255:
        log.info("ignored Clerk event %s", kind)
        return WebhookResult(status="ignored", event=kind)
    if kind == "user.deleted":
        user = await users.get_by_subject(session, subject=subject)
        if user is None:
            return WebhookResult(status="ignored", event=kind)
        await users.deactivate(session, user=user, hub=hub, cache=cache)
    else:
        user = await users.upsert_from_claims(
            session,
            subject=subject,
            email=_primary_email(data),
            name=_full_name(data),
            avatar_url=web_url_or_none(data.get("image_url") or data.get("profile_image_url")),
        )
    return WebhookResult(status="ok", event=kind, user_id=str(user.id))
