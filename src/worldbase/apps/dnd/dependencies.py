"""Dependencies of the dnd app: who may write, the image being read or edited, rate limits.

Access (seed 002's clients send no credentials):
- default: everyone may read and write; a bearer token, when sent, records `created_by`.
- `DND_REQUIRE_AUTH=true`: every write needs a bearer token; feature/delete/restore need
  the image's creator or an admin (images without a creator: admins only); clearing the
  scene cache and the maintenance cleanups need an admin. Reads stay open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection, Request

from worldbase.apps.dnd import service
from worldbase.apps.dnd.models import ImageAsset
from worldbase.apps.dnd.providers import ImageProvider, create_provider
from worldbase.apps.dnd.scenes import KeyedLocks
from worldbase.apps.dnd.settings import DndSettings
from worldbase.core.auth import OptionalUser
from worldbase.core.db import Session
from worldbase.core.errors import Forbidden, NotAuthenticated, RateLimited
from worldbase.core.models import User
from worldbase.core.ratelimit import rate_limit
from worldbase.core.schemas import serial_id_path
from worldbase.settings import Settings


@dataclass
class DndRuntime:
    """Per-app state: the image provider and the single-flight locks."""

    provider: ImageProvider
    locks: KeyedLocks = field(default_factory=KeyedLocks)


async def get_runtime(connection: HTTPConnection) -> DndRuntime:
    state = connection.app.state
    runtime: DndRuntime | None = getattr(state, "dnd", None)
    if runtime is None:
        runtime = DndRuntime(provider=create_provider(state.settings))
        state.dnd = runtime
    return runtime


async def get_settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


RuntimeDep = Annotated[DndRuntime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def writer(user: OptionalUser, settings: SettingsDep) -> User | None:
    """The caller of a write: None (anonymous) is allowed unless DND_REQUIRE_AUTH is on."""
    if user is None and settings.app(DndSettings).require_auth:
        raise NotAuthenticated("Sign in to change images (DND_REQUIRE_AUTH is on)")
    return user


Writer = Annotated[User | None, Depends(writer)]


async def maintainer(user: Writer, settings: SettingsDep) -> User | None:
    """Cache-wide and cleanup operations: an admin when DND_REQUIRE_AUTH is on."""
    if settings.app(DndSettings).require_auth and (user is None or not user.is_admin):
        raise Forbidden("Administrator rights required")
    return user


Maintainer = Annotated[User | None, Depends(maintainer)]
ImageId = Annotated[int, serial_id_path("Image id")]


async def image_for_read(image_id: ImageId, session: Session) -> ImageAsset:
    return await service.get_or_raise(session, image_id=image_id)


def _check_edit(image: ImageAsset, user: User | None, settings: Settings) -> ImageAsset:
    if not settings.app(DndSettings).require_auth or (user is not None and user.is_admin):
        return image
    if user is None or image.created_by != user.id:
        raise Forbidden("Only the image's creator or an administrator can change it")
    return image


async def image_for_edit(
    image_id: ImageId, session: Session, user: Writer, settings: SettingsDep
) -> ImageAsset:
    image = await service.get_or_raise(session, image_id=image_id)
    return _check_edit(image, user, settings)


async def deleted_image_for_edit(
    image_id: ImageId, session: Session, user: Writer, settings: SettingsDep
) -> ImageAsset:
    """Restore also finds soft-deleted images (and is a no-op on live ones)."""
    image = await service.get_or_raise(session, image_id=image_id, include_deleted=True)
    return _check_edit(image, user, settings)


ImageForRead = Annotated[ImageAsset, Depends(image_for_read)]
ImageForEdit = Annotated[ImageAsset, Depends(image_for_edit)]
DeletedImageForEdit = Annotated[ImageAsset, Depends(deleted_image_for_edit)]


def seed_rate_limit(
    scope: str, limit: str | Callable[[Settings], str]
) -> Callable[[Request], Awaitable[None]]:
    """core's limiter, answering with the seed's exact 429 message."""
    inner = rate_limit(scope, limit)

    async def dependency(request: Request) -> None:
        try:
            await inner(request)
        except RateLimited as exc:
            raise RateLimited(
                "Rate limit exceeded", headers=exc.headers, detail=exc.detail
            ) from None

    return dependency


image_rate_limit = seed_rate_limit(
    "dnd-images", lambda s: f"{s.app(DndSettings).max_requests_per_minute}/minute"
)
scene_rate_limit = seed_rate_limit("dnd-scenes", "5/minute")
