"""HTTP routes of the dnd app, at seed 002's paths (`/api/v1/...`)."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse, Response
from starlette.requests import Request

from worldbase.apps.dnd import maintenance, migration, scenes, service
from worldbase.apps.dnd.dependencies import (
    DeletedImageForEdit,
    ImageForEdit,
    ImageForRead,
    Maintainer,
    RuntimeDep,
    SettingsDep,
    Writer,
    image_rate_limit,
    scene_rate_limit,
)
from worldbase.apps.dnd.files import serve_object, stream_object
from worldbase.apps.dnd.schemas import (
    SCENE_TEXT_PATTERN,
    CacheStatsRead,
    CountRead,
    FeatureUpdate,
    ImageGenerate,
    ImagePage,
    ImageSort,
    ImageWithData,
    LocalStorageDump,
    MessageRead,
    MigrationRead,
    OrphanCleanupRead,
    SceneGenerate,
    SceneRead,
    StatsRead,
    SubjectType,
)
from worldbase.core.db import Session
from worldbase.core.errors import BadInput
from worldbase.core.http import body_limit
from worldbase.core.services import StorageDep

router = APIRouter()
CLIENT_PAGE = FilePath(__file__).resolve().parent / "static" / "client.html"
IncludeData = Annotated[bool, Query(description="Add the WebP file as `base64_data`")]


async def _with_data(storage: StorageDep, image: Any, include_data: bool) -> ImageWithData:
    data = await service.read_base64(storage, image) if include_data else None
    return ImageWithData.model_validate(image).model_copy(update={"base64_data": data})


# --- Images ------------------------------------------------------------------------------------


@router.post(
    "/api/v1/images/generate",
    response_model=ImageWithData,
    status_code=201,
    summary="Generate an image (procedural offline, or Gemini) and store it as WebP",
    dependencies=[Depends(image_rate_limit)],
)
async def generate_image(
    body: ImageGenerate,
    session: Session,
    storage: StorageDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    user: Writer,
) -> ImageWithData:
    image = await service.create(
        session,
        storage=storage,
        provider=runtime.provider,
        data=body,
        quality=settings.webp_quality,
        created_by=user.id if user else None,
    )
    return await _with_data(storage, image, True)


@router.get(
    "/api/v1/images/search",
    response_model=ImagePage,
    summary="Search images (default order: featured first, then newest)",
)
async def search_images(
    session: Session,
    subject_name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    subject_type: SubjectType | None = None,
    is_featured: bool | None = None,
    sort: Annotated[
        ImageSort,
        Query(description="featured (featured first, then newest), newest, oldest, most_used"),
    ] = "featured",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    return await service.list(
        session,
        subject_name=subject_name,
        subject_type=subject_type,
        is_featured=is_featured,
        sort=sort,
        page=page,
        page_size=page_size,
    )


@router.get(
    "/api/v1/images/{image_id}",
    response_model=ImageWithData,
    summary="One image, with its WebP as base64 unless include_data=false",
)
async def get_image(
    image: ImageForRead, session: Session, storage: StorageDep, include_data: IncludeData = True
) -> ImageWithData:
    result = await _with_data(storage, image, include_data)
    if include_data:  # the game fetched it to show it: one more use
        await service.mark_used(session, image_id=image.id)
        await session.commit()
        result.use_count += 1
    return result


# A stored WebP: whole (200), a byte range (206) or unchanged (304, If-None-Match).
_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/webp": {"example": "(binary WebP)"}}},
    206: {},
    304: {},
}


@router.get(
    "/api/v1/images/{image_id}/file",
    summary="The full WebP image (ETag, Range, Cache-Control)",
    response_class=Response,
    responses=_FILE_RESPONSES,
)
async def get_image_file(image: ImageForRead, request: Request, storage: StorageDep) -> Response:
    return await stream_object(request, storage, image.storage_path_full)


@router.get(
    "/api/v1/images/{image_id}/thumbnail",
    summary="The 200x200 WebP thumbnail (ETag, Range, Cache-Control)",
    response_class=Response,
    responses=_FILE_RESPONSES,
)
async def get_image_thumbnail(
    image: ImageForRead, request: Request, storage: StorageDep
) -> Response:
    return await stream_object(request, storage, image.storage_path_thumbnail)


StoredName = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{32}\.webp$",
        description="The file name of a stored image (`storage_path_full`'s last part)",
    ),
]


@router.get(
    "/dnd/images/{kind}/{name}",
    summary="A stored path (`storage_path_full`, `storage_path_thumbnail`) as a URL",
    description=(
        "Every stored path the API returns is also a URL path of this server, as the game's "
        "portal page loads `${base}/${storage_path_thumbnail}`. Local storage: the file with "
        "ETag, Range and 304, as `/file`; S3: a 307 redirect to a presigned URL."
    ),
    response_class=Response,
    responses={**_FILE_RESPONSES, 307: {}},
)
async def get_stored_file(
    kind: Literal["full", "thumbnails"],
    name: StoredName,
    request: Request,
    session: Session,
    storage: StorageDep,
) -> Response:
    key = await service.get_by_path_or_raise(session, kind=kind, name=name)
    return await serve_object(request, storage, key)


@router.put(
    "/api/v1/images/{image_id}/feature",
    response_model=ImageWithData,
    summary="Toggle featured (or set it with {is_featured})",
)
async def feature_image(
    image: ImageForEdit, session: Session, body: FeatureUpdate | None = None
) -> ImageWithData:
    updated = await service.update_featured(
        session, image=image, is_featured=body.is_featured if body else None
    )
    return ImageWithData.model_validate(updated)


@router.delete(
    "/api/v1/images/{image_id}", response_model=MessageRead, summary="Soft-delete an image"
)
async def delete_image(image: ImageForEdit, session: Session) -> dict[str, Any]:
    await service.delete(session, image=image)
    return {"status": "ok", "message": f"Image {image.id} deleted", "id": image.id}


@router.post(
    "/api/v1/images/{image_id}/restore",
    response_model=ImageWithData,
    summary="Restore a soft-deleted image",
)
async def restore_image(image: DeletedImageForEdit, session: Session) -> ImageWithData:
    return ImageWithData.model_validate(await service.restore(session, image=image))


# --- Scenes ------------------------------------------------------------------------------------

SceneText = Annotated[str | None, Query(min_length=1, max_length=100, pattern=SCENE_TEXT_PATTERN)]


@router.post(
    "/api/v1/scenes/generate",
    response_model=SceneRead,
    summary="The cached scene image, generated once per (location, time of day, weather)",
    description=(
        "Parameters come in the query string (`?location=Tavern`) or as the JSON body the "
        "seed's frontend sends (`{location, time_of_day, weather}`), or both: a field given "
        "in both is taken from the query string. time_of_day defaults to Day, weather to Clear."
    ),
)
async def generate_scene(
    request: Request,
    session: Session,
    storage: StorageDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    user: Writer,
    body: SceneGenerate | None = None,
    location: SceneText = None,
    time_of_day: SceneText = None,
    weather: SceneText = None,
    force_regenerate: bool | None = None,
    include_data: IncludeData = True,
) -> SceneRead:
    given = body or SceneGenerate()
    location = location or given.location
    if location is None:
        raise BadInput(
            "location is required (query string or JSON body)",
            detail=[{"loc": ["query", "location"], "msg": "Field required"}],
        )
    time_of_day = time_of_day or given.time_of_day or "Day"
    weather = weather or given.weather or "Clear"
    if force_regenerate is None:
        force_regenerate = bool(given.force_regenerate)

    async def limit() -> None:
        await scene_rate_limit(request)

    entry, cached = await scenes.get_or_create(
        session,
        storage=storage,
        provider=runtime.provider,
        settings=settings,
        locks=runtime.locks,
        location=location,
        time_of_day=time_of_day,
        weather=weather,
        force_regenerate=force_regenerate,
        created_by=user.id if user else None,
        before_generate=limit,
    )
    image = await _with_data(storage, entry.image, include_data)
    return SceneRead.model_validate(
        {**{c: getattr(entry, c) for c in _SCENE_FIELDS}, "cached": cached, "image": image}
    )


_SCENE_FIELDS = [
    "cache_key",
    "location",
    "time_of_day",
    "weather",
    "image_id",
    "hit_count",
    "miss_count",
    "created_at",
    "expires_at",
]


@router.get(
    "/api/v1/scenes/cache/stats", response_model=CacheStatsRead, summary="Scene cache statistics"
)
async def scene_cache_stats(session: Session, settings: SettingsDep) -> dict[str, Any]:
    return await scenes.stats(session, settings=settings)


@router.delete(
    "/api/v1/scenes/cache/clear",
    response_model=CountRead,
    summary="Clear the scene cache (the images stay in the gallery)",
)
async def clear_scene_cache(session: Session, _: Maintainer) -> dict[str, Any]:
    return _deleted(await scenes.delete(session), "cache entries cleared")


def _deleted(count: int, what: str) -> dict[str, Any]:
    """The CountRead body of a bulk delete."""
    return {"status": "ok", "deleted": count, "message": f"{count} {what}"}


# --- Maintenance -------------------------------------------------------------------------------


@router.post(
    "/api/v1/maintenance/cleanup/expired-cache",
    response_model=CountRead,
    summary="Delete expired scene-cache entries",
)
async def cleanup_expired_cache(session: Session, _: Maintainer) -> dict[str, Any]:
    return _deleted(await maintenance.delete_expired(session), "expired entries deleted")


@router.post(
    "/api/v1/maintenance/cleanup/orphaned-images",
    response_model=OrphanCleanupRead,
    summary="Delete rows without files and files without rows",
)
async def cleanup_orphaned_images(
    session: Session, storage: StorageDep, _: Maintainer, dry_run: bool = False
) -> dict[str, Any]:
    return await maintenance.delete_orphans(session, storage=storage, dry_run=dry_run)


@router.get("/api/v1/maintenance/stats", response_model=StatsRead, summary="System statistics")
async def maintenance_stats(
    session: Session, settings: SettingsDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return await maintenance.stats(session, settings=settings, provider=runtime.provider.name)


# --- Migration and the demo client ----------------------------------------------------------------


@router.post(
    "/api/v1/migrate/from-localstorage",
    response_model=MigrationRead,
    summary="Import the game's LocalStorage dump (idempotent; bad entries reported)",
    description=(
        "Takes seed 002's `{scene_cache, item_images}` body, or the game's raw LocalStorage "
        "as it sits in the browser (`JSON.stringify({...localStorage})`: flat "
        "`scene_cache_*` / `item_image_*` keys whose values are JSON text, and the game's "
        "own `nanoBananaSceneCache` / `nanoBananaImageLibrary`). Bad entries are listed in "
        "`errors`, keys that hold no images in `ignored`; `status` is success, partial, "
        "failed (only errors) or empty (nothing usable)."
    ),
)
@body_limit(migration.MAX_BODY_BYTES)
async def migrate_from_localstorage(
    body: LocalStorageDump,
    session: Session,
    storage: StorageDep,
    settings: SettingsDep,
    user: Writer,
) -> dict[str, Any]:
    return await migration.migrate(
        session,
        storage=storage,
        settings=settings,
        dump=body.model_dump(),
        created_by=user.id if user else None,
    )


@router.get(
    "/api/v1/client",
    summary="A small browser client calling this API the way the game does",
    response_class=FileResponse,
    responses={200: {"content": {"text/html": {"example": "<!doctype html>..."}}}},
)
async def demo_client() -> FileResponse:
    return FileResponse(CLIENT_PAGE, media_type="text/html")
