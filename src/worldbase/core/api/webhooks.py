"""Core routes under /api/webhooks: Clerk's user events, signed by Svix.

- Not configured (`CLERK_WEBHOOK_SECRET` unset or unusable): 503.
- Missing, malformed, stale (over 5 minutes, Svix's replay window) or wrong signature: 400
  ("Webhook verification failed: <reason>"), which Svix treats as a failed delivery and retries.
- `user.created` / `user.updated` upsert the user by Clerk id (e-mail, username, first and last
  name as given, display name "first last", picture), admin rights included when the
  user's `public_metadata` is there (`JWT_ADMIN_CLAIM`: `isAdmin: true` grants, else revokes);
  `user.deleted` deactivates it and clears its personal data (the row stays, because apps'
  data will point at it).
- Every event is idempotent; unknown event types are acknowledged with 200 and ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession
from svix.webhooks import Webhook, WebhookVerificationError

from worldbase.core import users
from worldbase.core.cache import Cache
from worldbase.core.db import Session
from worldbase.core.errors import DomainError, ServiceUnavailable
from worldbase.core.models import User
from worldbase.core.realtime import Hub
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
        # SamSyn's wording: its frontend and tests look for "verification failed".
        reason = f"Webhook verification failed: {exc or 'invalid signature'}"
        raise InvalidSignature(reason, detail=reason) from exc
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
    def text(key: str) -> str | None:
        return _text(data.get(key), 255)

    return _text(users.display_name(text("first_name"), text("last_name"), text("username")), 255)


def clerk_profile(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A Clerk user object's fields as `users.upsert_from_claims` takes them."""
    return {
        "email": _primary_email(data),
        "name": _full_name(data),
        "username": _text(data.get("username"), 255),
        "first_name": _text(data.get("first_name"), 255),
        "last_name": _text(data.get("last_name"), 255),
        "avatar_url": web_url_or_none(data.get("image_url") or data.get("profile_image_url")),
        "is_admin": users.admin_claim(data, settings.jwt_admin_claim),
    }


async def read_clerk_event(request: Request) -> dict[str, Any]:
    """The Svix-verified Clerk event of this request (400 when unsigned, 503 when
    unconfigured). The signature covers the exact bytes, so the body is read raw."""
    return _verified_event(request, await request.body())


OnDelete = Callable[[AsyncSession, User], Awaitable[None]]


async def apply_clerk_event(
    session: AsyncSession,
    event: dict[str, Any],
    *,
    settings: Settings,
    hub: Hub,
    cache: Cache,
    on_delete: OnDelete | None = None,
) -> WebhookResult:
    """Apply a verified Clerk event (both webhook routes call this): `user.created` and
    `user.updated` upsert the user (admin rights too, from `JWT_ADMIN_CLAIM`), `user.deleted`
    runs `on_delete` (an app's hand-over) and then deactivates the account."""
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
        if on_delete is not None and user.is_active:
            await on_delete(session, user)
        await users.deactivate(session, user=user, hub=hub, cache=cache)
    else:
        user = await users.upsert_from_claims(
            session, subject=subject, hub=hub, **clerk_profile(data, settings)
        )
    return WebhookResult(status="ok", event=kind, user_id=str(user.id))


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
    event = await read_clerk_event(request)
    return await apply_clerk_event(
        session, event, settings=request.app.state.settings, hub=hub, cache=cache
    )
