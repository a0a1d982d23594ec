"""Characters and favorites: queries, writes, stored files and the response cache.

The list and detail responses are cached as JSON bytes (list 1 h, detail 24 h, as the seed
says) and every write (create, update, delete, portrait, model, attached reconstruction)
drops them, so a reader never sees a character older than its last committed change from
this deployment's cache. Clients revalidate with the body's ETag (see the routes).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.bestiary import lod, meshes, remote
from worldbase.apps.bestiary.models import Character, ExportJob, Favorite
from worldbase.apps.bestiary.schemas import CharacterPage, CharacterRead, CharacterSort
from worldbase.core.cache import Cache
from worldbase.core.errors import NotFound
from worldbase.core.images import WebpImage, decode_to_webp
from worldbase.core.models import User
from worldbase.core.storage import Storage
from worldbase.settings import Settings

LIST_TTL = 3600
DETAIL_TTL = 24 * 3600
CACHE_PREFIX = "bestiary:characters:"
LIST_PREFIX = CACHE_PREFIX + "list:"


@dataclass(frozen=True)
class CharacterFilter:
    race: str | None = None
    faction: str | None = None
    location: str | None = None
    difficulty: str | None = None
    level_min: int | None = None
    level_max: int | None = None
    q: str | None = None
    sort: CharacterSort = CharacterSort.name
    limit: int = 20
    offset: int = 0

    def cache_key(self) -> str:
        raw = json.dumps(self.__dict__, sort_keys=True, default=str)
        return LIST_PREFIX + hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


_SORTS: dict[CharacterSort, tuple[Any, ...]] = {
    CharacterSort.name: (Character.name.asc(),),
    CharacterSort.name_desc: (Character.name.desc(),),
    CharacterSort.level: (Character.level.asc(),),
    CharacterSort.level_desc: (Character.level.desc(),),
    CharacterSort.created_at: (Character.created_at.asc(),),
    CharacterSort.created_at_desc: (Character.created_at.desc(),),
    CharacterSort.id: (),
}


def _filtered(query: Select[Any], f: CharacterFilter) -> Select[Any]:
    for column, value in (
        (Character.race, f.race),
        (Character.faction, f.faction),
        (Character.location, f.location),
        (Character.difficulty, f.difficulty),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.level_min is not None:
        query = query.where(Character.level >= f.level_min)
    if f.level_max is not None:
        query = query.where(Character.level <= f.level_max)
    if f.q:
        needle = f.q.lower()
        query = query.where(
            func.lower(Character.name).contains(needle, autoescape=True)
            | func.lower(func.coalesce(Character.description, "")).contains(needle, autoescape=True)
        )
    return query


async def list(
    session: AsyncSession, *, filters: CharacterFilter
) -> tuple[builtins.list[Character], int]:
    query = _filtered(select(Character), filters)
    total = await session.scalar(_filtered(select(func.count(Character.id)), filters))
    order = (*_SORTS[filters.sort], Character.id.asc())
    rows = await session.scalars(query.order_by(*order).limit(filters.limit).offset(filters.offset))
    return builtins.list(rows), int(total or 0)


async def get_or_raise(session: AsyncSession, *, character_id: int) -> Character:
    character = await session.get(Character, character_id)
    if character is None:
        raise NotFound("Character not found")
    return character


async def create(session: AsyncSession, *, values: dict[str, Any]) -> Character:
    return await update(session, character=Character(), values=values)


async def update(
    session: AsyncSession, *, character: Character, values: dict[str, Any]
) -> Character:
    for key, value in values.items():
        setattr(character, key, value)
    session.add(character)
    await session.commit()
    await session.refresh(character)
    return character


async def save(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    *,
    values: dict[str, Any],
    character: Character | None = None,
) -> Character:
    """Create (no `character`) or update a character from API values: the `image_path` and
    `model_path` URLs are fetched before anything is written (`remote.media_for`)."""
    current = None
    if character is not None:
        current = {"image_path": character.image_path, "model_path": character.model_path}
    media = await remote.media_for(values, settings=settings, current=current)
    character = await update(session, character=character or Character(), values=values)
    if not media.empty:
        character = await set_media(session, storage, character=character, media=media)
    return character


def _files(character: Character) -> builtins.list[str]:
    paths = [character.image_path, character.thumbnail_path]
    if character.model_path:
        paths += lod.keys_of(character.model_path)
    return [p for p in paths if p]


async def _delete_quietly(storage: Storage, keys: builtins.list[str]) -> None:
    for key in keys:
        with contextlib.suppress(NotFound):
            await storage.delete(key)


async def delete(session: AsyncSession, storage: Storage, *, character: Character) -> None:
    """The row (favorites and exports cascade) first, then its files."""
    exported = await session.scalars(
        select(ExportJob.file_path).where(
            ExportJob.character_id == character.id, ExportJob.file_path.is_not(None)
        )
    )
    keys = _files(character) + [k for k in exported if k]
    await session.delete(character)
    await session.commit()
    await _delete_quietly(storage, keys)


def _key(character: Character, kind: str, data: bytes, ext: str) -> str:
    digest = hashlib.sha256(data).hexdigest()[:16]
    return f"bestiary/characters/{character.id}/{kind}-{digest}.{ext}"


async def set_image(
    session: AsyncSession, storage: Storage, *, character: Character, data: bytes, quality: int
) -> Character:
    """Sniff and re-encode an uploaded picture: WebP plus a 200x200 thumbnail."""
    portrait = await asyncio.to_thread(decode_to_webp, data, quality=quality, upright=True)
    return await set_portrait(session, storage, character=character, portrait=portrait)


async def set_portrait(
    session: AsyncSession, storage: Storage, *, character: Character, portrait: WebpImage
) -> Character:
    full_key = _key(character, "image", portrait.full, "webp")
    thumb_key = _key(character, "thumb", portrait.thumbnail, "webp")
    await storage.put(full_key, portrait.full, content_type="image/webp")
    await storage.put(thumb_key, portrait.thumbnail, content_type="image/webp")
    old = [p for p in (character.image_path, character.thumbnail_path) if p]
    character.image_path, character.thumbnail_path = full_key, thumb_key
    await session.commit()
    await session.refresh(character)
    await _delete_quietly(storage, [k for k in old if k not in (full_key, thumb_key)])
    return character


async def set_model(
    session: AsyncSession, storage: Storage, *, character: Character, data: bytes
) -> tuple[Character, meshes.MeshInfo]:
    """Validate a model in any format trimesh reads and store it normalized as GLB."""
    glb, summary = await asyncio.to_thread(meshes.normalize, data)
    return await set_model_glb(session, storage, character=character, glb=glb), summary


async def set_model_glb(
    session: AsyncSession, storage: Storage, *, character: Character, glb: bytes
) -> Character:
    """Store a GLB and its levels of detail (`lod`) as the character's model."""
    key = _key(character, "model", glb, "glb")
    variants = await asyncio.to_thread(lod.all_variants, glb)
    await storage.put(key, glb, content_type=meshes.GLB_TYPE)
    for (level, compression), data in variants.items():
        await storage.put(lod.key_for(key, level, compression), data, content_type=meshes.GLB_TYPE)
    old = character.model_path
    character.model_path = key
    await session.commit()
    await session.refresh(character)
    if old and old != key:
        await _delete_quietly(storage, lod.keys_of(old))
    return character


async def model_key(
    storage: Storage, *, character: Character, level: int, compression: str = "none"
) -> str:
    """The storage key of the model's `level` of detail, Draco-compressed or not; a variant
    missing (a model stored before variants were made) is made now from the model and stored."""
    if not character.model_path:
        raise NotFound("This character has no 3D model")
    key = lod.key_for(character.model_path, level, compression)
    if key == character.model_path or await storage.exists(key):
        return key
    glb = await storage.get(character.model_path)
    data = await asyncio.to_thread(lod.variant, glb, level, compression)
    await storage.put(key, data, content_type=meshes.GLB_TYPE)
    return key


async def set_media(
    session: AsyncSession, storage: Storage, *, character: Character, media: remote.Media
) -> Character:
    """Store what `remote.media_for` fetched, or remove what it clears."""
    if media.portrait is not None:
        character = await set_portrait(
            session, storage, character=character, portrait=media.portrait
        )
    if media.glb is not None:
        character = await set_model_glb(session, storage, character=character, glb=media.glb)
    old: builtins.list[str] = []
    if media.clear_image:
        old += [p for p in (character.image_path, character.thumbnail_path) if p]
        character.image_path = character.thumbnail_path = None
    if media.clear_model and character.model_path:
        old += lod.keys_of(character.model_path)
        character.model_path = None
    if old:
        await session.commit()
        await session.refresh(character)
        await _delete_quietly(storage, old)
    return character


# --- Cached responses --------------------------------------------------------------------------


def _detail_key(character_id: int) -> str:
    return f"{CACHE_PREFIX}{character_id}"


@dataclass(frozen=True)
class CachedBody:
    """A response body and whether it came from the cache."""

    body: bytes
    hit: bool


async def list_json(session: AsyncSession, cache: Cache, *, filters: CharacterFilter) -> CachedBody:
    key = filters.cache_key()
    cached = await cache.get(key)
    if cached is not None:
        return CachedBody(cached, True)
    items, total = await list(session, filters=filters)
    page = CharacterPage(
        items=[CharacterRead.model_validate(c) for c in items],
        total=total,
        limit=filters.limit,
        offset=filters.offset,
    )
    body = page.model_dump_json().encode()
    await cache.set(key, body, ttl=LIST_TTL)
    return CachedBody(body, False)


async def get_json(session: AsyncSession, cache: Cache, *, character_id: int) -> CachedBody:
    key = _detail_key(character_id)
    cached = await cache.get(key)
    if cached is not None:
        return CachedBody(cached, True)
    character = await get_or_raise(session, character_id=character_id)
    body = CharacterRead.model_validate(character).model_dump_json().encode()
    await cache.set(key, body, ttl=DETAIL_TTL)
    return CachedBody(body, False)


async def invalidate(cache: Cache, *, character_id: int | None = None) -> None:
    """After a write: every cached list, and the character's detail."""
    await cache.delete_prefix(LIST_PREFIX)
    if character_id is not None:
        await cache.delete(_detail_key(character_id))


# --- Favorites ---------------------------------------------------------------------------------


async def list_favorites(
    session: AsyncSession, *, user: User, limit: int, offset: int
) -> tuple[builtins.list[tuple[Favorite, Character]], int]:
    query = select(Favorite, Character).join(Character, Character.id == Favorite.character_id)
    query = query.where(Favorite.user_id == user.id)
    total = await session.scalar(select(func.count(Favorite.id)).where(Favorite.user_id == user.id))
    rows = await session.execute(
        query.order_by(Favorite.created_at.desc(), Favorite.id.desc()).limit(limit).offset(offset)
    )
    return [(f, c) for f, c in rows.all()], int(total or 0)


async def add_favorite(
    session: AsyncSession, *, user: User, character: Character
) -> tuple[Favorite, bool]:
    """(favorite, created): adding twice is not an error, it returns the first one."""
    existing = await _favorite(session, user_id=user.id, character_id=character.id)
    if existing is not None:
        return existing, False
    favorite = Favorite(user_id=user.id, character_id=character.id)
    session.add(favorite)
    try:
        await session.commit()
    except IntegrityError:  # a concurrent add won the race
        await session.rollback()
        existing = await _favorite(session, user_id=user.id, character_id=character.id)
        if existing is None:
            raise NotFound("Character not found") from None  # deleted meanwhile
        return existing, False
    return favorite, True


async def remove_favorite(session: AsyncSession, *, user: User, character_id: int) -> bool:
    favorite = await _favorite(session, user_id=user.id, character_id=character_id)
    if favorite is None:
        return False
    await session.delete(favorite)
    await session.commit()
    return True


async def _favorite(
    session: AsyncSession, *, user_id: uuid.UUID, character_id: int
) -> Favorite | None:
    result: Favorite | None = await session.scalar(
        select(Favorite).where(Favorite.user_id == user_id, Favorite.character_id == character_id)
    )
    return result
