"""Routes: characters (public reads, cached; admin writes), their portrait and 3D model.

The list and one character are served from the server cache (1 h and 24 h, dropped on every
write) with `ETag`, `Cache-Control: public, no-cache` (browsers and CDNs keep the body but
ask again each time, so an edit shows at once; an unchanged answer is a 304 from the cache)
and `X-Cache: hit|miss`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile, status

from worldbase.apps.bestiary import lod, meshes, service
from worldbase.apps.bestiary.dependencies import (
    CharacterForEdit,
    CharacterForRead,
    CharacterId,
    UploadLimit,
    WriteLimit,
)
from worldbase.apps.bestiary.files import read_capped, serve
from worldbase.apps.bestiary.schemas import (
    CharacterCreate,
    CharacterPage,
    CharacterRead,
    CharacterSort,
    CharacterUpdate,
)
from worldbase.apps.bestiary.service import CharacterFilter
from worldbase.core.auth import AdminUser
from worldbase.core.db import Session
from worldbase.core.errors import NotFound
from worldbase.core.schemas import PageLimit, PageOffset
from worldbase.core.services import CacheDep, Services, ServicesDep, StorageDep
from worldbase.geo.tiles import etag_for, not_modified

router = APIRouter()

JSON = "application/json"
_GLB = {"content": {meshes.GLB_TYPE: {"example": "(binary glTF)"}}}
_WEBP = {"content": {"image/webp": {"example": "(binary WebP)"}}}


# Shared caches may keep a cached answer but must revalidate it (the server's copy is dropped
# on every write, a browser's could not be).
READ_CACHE_CONTROL = "public, no-cache"
_CACHED_RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified (If-None-Match)"}
}
IfNoneMatch = Annotated[str | None, Header(max_length=1024)]


def _cached(request: Request, cached: service.CachedBody) -> Response:
    etag = etag_for(cached.body)
    headers = {
        "ETag": etag,
        "Cache-Control": READ_CACHE_CONTROL,
        "X-Cache": "hit" if cached.hit else "miss",
    }
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(cached.body, media_type=JSON, headers=headers)


async def _written(services: Services, character: Any, status_code: int = 200) -> Response:
    """After a write: the cached answers dropped, the character as it now reads."""
    await service.invalidate(services.cache, character_id=character.id)
    body = CharacterRead.model_validate(character).model_dump_json().encode()
    return Response(body, media_type=JSON, status_code=status_code)


@router.get(
    "/api/characters",
    response_model=CharacterPage,
    summary="List characters (filters, text search, sorting, pagination; cached 1 h)",
    responses=_CACHED_RESPONSES,
)
async def list_characters(
    request: Request,
    session: Session,
    cache: CacheDep,
    race: Annotated[str | None, Query(max_length=100)] = None,
    faction: Annotated[str | None, Query(max_length=100)] = None,
    location: Annotated[str | None, Query(max_length=255)] = None,
    difficulty: Annotated[str | None, Query(max_length=50)] = None,
    level_min: Annotated[int | None, Query(ge=0, le=10_000)] = None,
    level_max: Annotated[int | None, Query(ge=0, le=10_000)] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Words in the name or description")
    ] = None,
    sort: CharacterSort = CharacterSort.name,
    limit: PageLimit = 20,
    offset: PageOffset = 0,
) -> Response:
    filters = CharacterFilter(
        race=race,
        faction=faction,
        location=location,
        difficulty=difficulty,
        level_min=level_min,
        level_max=level_max,
        q=q.strip() if q else None,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return _cached(request, await service.list_json(session, cache, filters=filters))


@router.get(
    "/api/characters/{id}",
    response_model=CharacterRead,
    summary="One character (cached 24 h)",
    responses=_CACHED_RESPONSES,
)
async def get_character(
    request: Request, id: CharacterId, session: Session, cache: CacheDep
) -> Response:
    return _cached(request, await service.get_json(session, cache, character_id=id))


@router.post(
    "/api/characters",
    dependencies=[WriteLimit],
    response_model=CharacterRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a character (admins; `image_path`/`model_path` URLs are fetched)",
)
async def create_character(
    body: CharacterCreate, session: Session, services: ServicesDep, _: AdminUser
) -> Response:
    values = body.model_dump()
    character = await service.save(session, services.storage, services.settings, values=values)
    return await _written(services, character, status.HTTP_201_CREATED)


@router.put(
    "/api/characters/{id}",
    dependencies=[WriteLimit],
    response_model=CharacterRead,
    summary="Update a character (admins; only the fields sent change)",
)
async def update_character(
    body: CharacterUpdate, character: CharacterForEdit, session: Session, services: ServicesDep
) -> Response:
    values = body.model_dump(exclude_unset=True)
    character = await service.save(
        session, services.storage, services.settings, values=values, character=character
    )
    return await _written(services, character)


@router.delete(
    "/api/characters/{id}",
    dependencies=[WriteLimit],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a character with its files, favorites and exports (admins)",
)
async def delete_character(
    character: CharacterForEdit, session: Session, storage: StorageDep, cache: CacheDep
) -> Response:
    character_id = character.id
    await service.delete(session, storage, character=character)
    await service.invalidate(cache, character_id=character_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/api/characters/{id}/image",
    dependencies=[UploadLimit],
    response_model=CharacterRead,
    summary="Attach a portrait (admins; any image format, stored as WebP + 200x200 thumbnail)",
)
async def put_image(
    character: CharacterForEdit,
    session: Session,
    services: ServicesDep,
    file: Annotated[
        UploadFile, File(description="The picture (type sniffed)", examples=["troll.png"])
    ],
) -> Response:
    settings = services.settings
    data = await read_capped(file, settings.worldbase_max_body_bytes)
    character = await service.set_image(
        session, services.storage, character=character, data=data, quality=settings.webp_quality
    )
    return await _written(services, character)


@router.get(
    "/api/characters/{id}/image",
    response_class=Response,
    responses={200: _WEBP, **_CACHED_RESPONSES},
    summary="A character's portrait (WebP), or its thumbnail with ?size=thumbnail",
)
async def get_image(
    character: CharacterForRead,
    storage: StorageDep,
    size: Literal["full", "thumbnail"] = "full",
    if_none_match: IfNoneMatch = None,
) -> Response:
    key = character.thumbnail_path if size == "thumbnail" else character.image_path
    if not key:
        raise NotFound("This character has no image")
    return await serve(storage, key, media_type="image/webp", if_none_match=if_none_match)


@router.put(
    "/api/characters/{id}/model",
    dependencies=[UploadLimit],
    response_model=CharacterRead,
    summary="Attach a 3D model (admins; glTF/GLB, OBJ, PLY, STL, OFF; stored as GLB)",
)
async def put_model(
    character: CharacterForEdit,
    session: Session,
    services: ServicesDep,
    file: Annotated[
        UploadFile, File(description="The model (format sniffed)", examples=["troll.glb"])
    ],
) -> Response:
    data = await read_capped(file, services.settings.worldbase_max_body_bytes)
    character, _ = await service.set_model(
        session, services.storage, character=character, data=data
    )
    return await _written(services, character)


@router.get(
    "/api/characters/{id}/model",
    response_class=Response,
    responses={200: _GLB, **_CACHED_RESPONSES},
    summary="A character's 3D model (GLB); ?lod=1|2 lighter levels, ?compression=draco",
)
async def get_model(
    character: CharacterForRead,
    storage: StorageDep,
    lod_level: Annotated[
        int,
        Query(
            alias="lod",
            ge=0,
            le=lod.MAX_LEVEL,
            description="Level of detail: 0 the full model, 1 half its triangles, 2 a fifth "
            "(quadric decimation, textures kept)",
        ),
    ] = 0,
    compression: Annotated[
        Literal["none", "draco"],
        Query(
            description="`draco`: the meshes Draco-compressed (glTF KHR_draco_mesh_compression; "
            "three.js DRACOLoader, Cesium, Babylon.js read it)"
        ),
    ] = "none",
    if_none_match: IfNoneMatch = None,
) -> Response:
    if not character.model_path:
        raise NotFound("This character has no 3D model")
    key = await service.model_key(
        storage, character=character, level=lod_level, compression=compression
    )
    return await serve(storage, key, media_type=meshes.GLB_TYPE, if_none_match=if_none_match)
