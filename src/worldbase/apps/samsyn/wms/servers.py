"""The WMS server registry: WMS servers saved once with their capabilities, for everyone to
browse and pick layers from (SamSyn's `wms_servers`).

Anyone may read the registry; admins add servers; the admin who added a server updates or
deletes it; any signed-in user may refresh its capabilities. Adding and refreshing read the
capabilities (`wms.capabilities`, under the source policy): a server that cannot be read is
not saved, and a refresh that fails leaves the saved capabilities as they were.
"""

from __future__ import annotations

import builtins
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.access import readable_layers
from worldbase.apps.samsyn.models import Layer, SourceType, WmsServer
from worldbase.apps.samsyn.wms import capabilities
from worldbase.core.cache import Cache
from worldbase.core.db import utcnow
from worldbase.core.errors import Conflict, Forbidden, NotFound
from worldbase.core.models import User
from worldbase.settings import Settings


async def list(session: AsyncSession, *, limit: int, offset: int) -> builtins.list[WmsServer]:
    """Every saved server, newest first."""
    rows = await session.scalars(
        select(WmsServer)
        .order_by(WmsServer.created_at.desc(), WmsServer.id)
        .limit(limit)
        .offset(offset)
    )
    return [*rows]


async def get_or_raise(session: AsyncSession, *, server_id: uuid.UUID) -> WmsServer:
    server = await session.get(WmsServer, server_id)
    if server is None:
        raise NotFound("WMS server not found")
    return server


def _apply(server: WmsServer, described: dict[str, Any]) -> None:
    server.version = described.get("version")
    server.service_title = described.get("service_title")
    server.service_provider = described.get("service_provider")
    server.layer_count = len(described.get("layers") or [])
    server.capabilities_cache = described
    server.cached_at = utcnow()


async def _check_unique(session: AsyncSession, base_url: str) -> None:
    if await session.scalar(select(WmsServer.id).where(WmsServer.base_url == base_url)):
        raise Conflict("A WMS server with this URL already exists")


async def create(
    session: AsyncSession,
    *,
    user: User,
    values: dict[str, Any],
    settings: Settings,
    cache: Cache,
) -> WmsServer:
    """A new server with its capabilities read now (409 for a URL already saved)."""
    await _check_unique(session, values["base_url"])
    described = await capabilities.read(
        values["base_url"], settings=settings, cache=cache, fresh=True
    )
    server = WmsServer(created_by=user.id, **values)
    _apply(server, described)
    session.add(server)
    try:
        await session.commit()
    except IntegrityError:  # saved by someone else since the check
        await session.rollback()
        raise Conflict("A WMS server with this URL already exists") from None
    return server


def _check_creator(server: WmsServer, user: User, action: str) -> None:
    if server.created_by != user.id:
        raise Forbidden(f"Only the server creator can {action} this server")


async def update(
    session: AsyncSession, *, server: WmsServer, user: User, values: dict[str, Any]
) -> WmsServer:
    """Name and description changed (the creator only); an explicit null name is ignored."""
    _check_creator(server, user, "update")
    for key, value in values.items():
        if value is None and key == "name":
            continue
        setattr(server, key, value)
    server.updated_at = utcnow()
    await session.commit()
    return server


async def delete(session: AsyncSession, *, server: WmsServer, user: User) -> None:
    _check_creator(server, user, "delete")
    await session.delete(server)
    await session.commit()


async def refresh(
    session: AsyncSession, *, server: WmsServer, settings: Settings, cache: Cache
) -> WmsServer:
    """The capabilities read again now (the saved ones stay when the WMS fails)."""
    described = await capabilities.read(server.base_url, settings=settings, cache=cache, fresh=True)
    _apply(server, described)
    server.updated_at = utcnow()
    await session.commit()
    return server


def layers(
    server: WmsServer, *, q: str | None = None, queryable: bool | None = None
) -> builtins.list[dict[str, Any]]:
    """The server's layers as last read; `q` matches name, title or abstract."""
    found = (server.capabilities_cache or {}).get("layers") or []
    if q:
        needle = q.lower()
        found = [
            layer
            for layer in found
            if any(needle in str(layer.get(k) or "").lower() for k in ("name", "title", "abstract"))
        ]
    if queryable is not None:
        found = [layer for layer in found if bool(layer.get("queryable")) is queryable]
    return found


async def is_known(session: AsyncSession, *, url: str) -> bool:
    """Whether `url` is a saved server's or that of a WMS layer anyone may read."""
    if await session.scalar(select(WmsServer.id).where(WmsServer.base_url == url).limit(1)):
        return True
    layer = await session.scalar(
        select(Layer.id)
        .where(
            Layer.source_type == SourceType.wms,
            Layer.source_config["url"].as_string() == url,
            readable_layers(None),
        )
        .limit(1)
    )
    return layer is not None
