"""Routes: habitats (public reads, admin writes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from worldbase.apps.habitats import service, tile_state
from worldbase.apps.habitats.dependencies import HabitatDep, Limit, Offset
from worldbase.apps.habitats.schemas import HabitatCreate, HabitatPage, HabitatRead, HabitatUpdate
from worldbase.core.auth import AdminUser
from worldbase.core.db import Session
from worldbase.core.services import CacheDep

router = APIRouter()


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/habitats", response_model=HabitatPage, summary="List habitats (by IUCN code)")
async def list_habitats(
    request: Request,
    session: Session,
    q: Annotated[
        str | None, Query(max_length=200, description="Text search in name, code, description")
    ] = None,
    ecosystem_type: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await service.list(
        session, q=q, ecosystem_type=ecosystem_type, limit=limit, offset=offset
    )
    base = base_url(request)
    return page([service.as_dict(h, base_url=base) for h in items], total, limit, offset)


@router.post(
    "/habitats",
    response_model=HabitatRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a habitat (admin)",
    description="409 when another habitat has the `iucn_code`; 422 for a bad code, colour "
    "or geometry.",
)
async def create_habitat(
    request: Request, body: HabitatCreate, session: Session, cache: CacheDep, _: AdminUser
) -> dict[str, Any]:
    habitat = await service.create(session, values=body.model_dump())
    await tile_state.forget(cache)
    return service.as_dict(habitat, base_url=base_url(request))


@router.get("/habitats/{id}", response_model=HabitatRead, summary="A habitat")
async def get_habitat(request: Request, habitat: HabitatDep) -> dict[str, Any]:
    return service.as_dict(habitat, base_url=base_url(request))


@router.put("/habitats/{id}", response_model=HabitatRead, summary="Update a habitat (admin)")
async def update_habitat(
    request: Request,
    body: HabitatUpdate,
    habitat: HabitatDep,
    session: Session,
    cache: CacheDep,
    _: AdminUser,
) -> dict[str, Any]:
    habitat = await service.update(
        session, habitat=habitat, values=body.model_dump(exclude_unset=True)
    )
    await tile_state.forget(cache, habitat_id=habitat.id)
    return service.as_dict(habitat, base_url=base_url(request))


@router.delete(
    "/habitats/{id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a habitat (admin)"
)
async def delete_habitat(
    habitat: HabitatDep, session: Session, cache: CacheDep, _: AdminUser
) -> Response:
    habitat_id = habitat.id
    await service.delete(session, habitat=habitat)
    await tile_state.forget(cache, habitat_id=habitat_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
