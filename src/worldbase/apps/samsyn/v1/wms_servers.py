"""`/api/v1/wms-servers` in SamSyn's shapes: the shared WMS server registry
(`wms.servers`). Anyone reads it; admins add servers, and the admin who added one updates
or deletes it; any signed-in user refreshes a server's capabilities."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from worldbase.apps.samsyn.models import WmsServer
from worldbase.apps.samsyn.v1.wms_shapes import (
    StatusMessage,
    WmsServerCreate,
    WmsServerLayersResponse,
    WmsServerListResponse,
    WmsServerResponse,
    WmsServerUpdate,
)
from worldbase.apps.samsyn.wms import servers as service_servers
from worldbase.core.auth import AdminUser, CurrentUser
from worldbase.core.db import Session
from worldbase.core.schemas import PageLimit, PageOffset
from worldbase.core.services import ServicesDep

router = APIRouter(prefix="/wms-servers", tags=["samsyn v1: wms-servers"])


async def _server(id: uuid.UUID, session: Session) -> WmsServer:
    return await service_servers.get_or_raise(session, server_id=id)


Server = Annotated[WmsServer, Depends(_server)]


@router.get(
    "",
    response_model=list[WmsServerListResponse],
    summary="The WMS server registry, newest first (anyone)",
)
async def list_servers(session: Session, limit: PageLimit = 200, offset: PageOffset = 0) -> Any:
    return await service_servers.list(session, limit=limit, offset=offset)


@router.post(
    "",
    response_model=WmsServerResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Add a WMS server, its capabilities read now (admins)",
    description=(
        "409 for a URL already saved, 403 for a URL the source policy refuses, 502/504 when "
        "the WMS cannot be read (then nothing is saved)."
    ),
)
async def create_server(
    body: WmsServerCreate, session: Session, user: AdminUser, services: ServicesDep
) -> Any:
    return await service_servers.create(
        session,
        user=user,
        values=body.model_dump(),
        settings=services.settings,
        cache=services.cache,
    )


@router.get(
    "/{id}",
    response_model=WmsServerResponse,
    summary="A WMS server with its capabilities as last read (anyone)",
)
async def get_server(server: Server) -> Any:
    return server


@router.put(
    "/{id}",
    response_model=WmsServerResponse,
    summary="Rename or describe a WMS server (the admin who added it)",
)
async def update_server(
    body: WmsServerUpdate, server: Server, session: Session, user: AdminUser
) -> Any:
    values = body.model_dump(exclude_unset=True)
    return await service_servers.update(session, server=server, user=user, values=values)


@router.delete(
    "/{id}",
    response_model=StatusMessage,
    summary="Remove a WMS server from the registry (the admin who added it)",
)
async def delete_server(server: Server, session: Session, user: AdminUser) -> Any:
    await service_servers.delete(session, server=server, user=user)
    return {"status": "success", "message": "WMS server deleted"}


@router.post(
    "/{id}/refresh",
    response_model=WmsServerResponse,
    summary="Read a WMS server's capabilities again (signed in)",
    description="502/504 when the WMS cannot be read; the saved capabilities stay.",
)
async def refresh_server(
    server: Server, session: Session, user: CurrentUser, services: ServicesDep
) -> Any:
    return await service_servers.refresh(
        session, server=server, settings=services.settings, cache=services.cache
    )


@router.get(
    "/{id}/layers",
    response_model=WmsServerLayersResponse,
    summary="A WMS server's layers, from its saved capabilities (anyone)",
)
async def server_layers(
    server: Server,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in name, title or abstract")
    ] = None,
    queryable: Annotated[bool | None, Query(description="Only (not) queryable layers")] = None,
) -> Any:
    return {
        "server_id": server.id,
        "server_name": server.name,
        "base_url": server.base_url,
        "version": server.version,
        "layers": service_servers.layers(server, q=q, queryable=queryable),
        "cached_at": server.cached_at,
    }
