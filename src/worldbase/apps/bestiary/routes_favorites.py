"""Routes: the signed-in user's favorite characters (idempotent add and remove)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from worldbase.apps.bestiary import service
from worldbase.apps.bestiary.dependencies import CharacterId, WriteLimit
from worldbase.apps.bestiary.schemas import CharacterRead, FavoritePage, FavoriteRead
from worldbase.core.auth import CurrentUser
from worldbase.core.db import Session
from worldbase.core.schemas import PageLimit, PageOffset

router = APIRouter()


def _favorite(favorite: Any, character: Any) -> dict[str, Any]:
    return {
        "character_id": favorite.character_id,
        "created_at": favorite.created_at,
        "character": CharacterRead.model_validate(character),
    }


@router.get("/api/favorites", response_model=FavoritePage, summary="My favorite characters")
async def list_favorites(
    session: Session,
    user: CurrentUser,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> dict[str, Any]:
    rows, total = await service.list_favorites(session, user=user, limit=limit, offset=offset)
    return {
        "items": [_favorite(f, c) for f, c in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post(
    "/api/favorites/{characterId}",
    dependencies=[WriteLimit],
    response_model=FavoriteRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": FavoriteRead, "description": "Already a favorite"}},
    summary="Add a character to my favorites (201; 200 if it already was)",
)
async def add_favorite(
    characterId: CharacterId,
    session: Session,
    user: CurrentUser,
    response: Response,
) -> dict[str, Any]:
    character = await service.get_or_raise(session, character_id=characterId)
    favorite, created = await service.add_favorite(session, user=user, character=character)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _favorite(favorite, character)


@router.delete(
    "/api/favorites/{characterId}",
    dependencies=[WriteLimit],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a character from my favorites (204 even if it was not one)",
)
async def remove_favorite(
    characterId: CharacterId,
    session: Session,
    user: CurrentUser,
) -> Response:
    await service.remove_favorite(session, user=user, character_id=characterId)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
