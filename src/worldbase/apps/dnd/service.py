"""Images: generate, store (files first, then the row), search, feature, soft delete, restore.

A stored image is two WebP objects (full and 200x200 thumbnail) plus one `image_assets`
row. Files are written first and removed again if the row cannot be committed, so a
failed generation leaves neither a row nor a file.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.dnd.exceptions import ImageNotFound
from worldbase.apps.dnd.models import ImageAsset
from worldbase.apps.dnd.providers import GenerationSpec, ImageProvider
from worldbase.apps.dnd.schemas import ImageGenerate
from worldbase.core.db import utcnow
from worldbase.core.errors import NotFound
from worldbase.core.images import WebpImage, encode_webp
from worldbase.core.storage import Storage

FULL_PREFIX = "dnd/images/full/"
THUMB_PREFIX = "dnd/images/thumbnails/"
WEBP = "image/webp"


@dataclass(frozen=True)
class StoredFiles:
    full: str
    thumbnail: str
    encoded: WebpImage


@asynccontextmanager
async def stored_files(storage: Storage, encoded: WebpImage) -> AsyncIterator[StoredFiles]:
    """Write both files; if the block fails (the row was not committed), delete them again."""
    name = uuid.uuid4().hex
    files = StoredFiles(f"{FULL_PREFIX}{name}.webp", f"{THUMB_PREFIX}{name}.webp", encoded)
    try:
        await storage.put(files.full, encoded.full, content_type=WEBP)
        await storage.put(files.thumbnail, encoded.thumbnail, content_type=WEBP)
        yield files
    except BaseException:
        # Shielded: a cancelled request must still not leave files behind.
        await asyncio.shield(_delete_quietly(storage, files.full, files.thumbnail))
        raise


async def _delete_quietly(storage: Storage, *keys: str) -> None:
    for key in keys:
        try:
            await storage.delete(key)
        except Exception:  # noqa: S112 - best effort; orphan cleanup catches the rest
            continue


def new_row(
    files: StoredFiles,
    *,
    subject_type: str,
    subject_name: str,
    component: str,
    prompt: str,
    custom_prompt: str | None,
    aspect_ratio: str,
    provider: str,
    generation_time_ms: int,
    created_by: uuid.UUID | None,
    source_hash: str | None = None,
    is_featured: bool = False,
) -> ImageAsset:
    now = utcnow()
    return ImageAsset(
        subject_type=subject_type,
        subject_name=subject_name,
        component=component,
        prompt=prompt,
        custom_prompt=custom_prompt,
        aspect_ratio=aspect_ratio,
        provider=provider,
        width=files.encoded.width,
        height=files.encoded.height,
        storage_path_full=files.full,
        storage_path_thumbnail=files.thumbnail,
        file_size_bytes=len(files.encoded.full),
        generation_time_ms=generation_time_ms,
        source_hash=source_hash,
        is_featured=is_featured,
        is_deleted=False,
        use_count=0,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )


async def render(
    *, provider: ImageProvider, spec: GenerationSpec, quality: int
) -> tuple[WebpImage, int]:
    """Generate and encode; returns the WebP pair and the generation time in ms."""
    started = time.perf_counter()
    picture: Image.Image = await provider.generate(spec)
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    encoded = await asyncio.to_thread(encode_webp, picture, quality=quality)
    return encoded, elapsed_ms


@asynccontextmanager
async def generated(
    storage: Storage,
    *,
    provider: ImageProvider,
    spec: GenerationSpec,
    component: str,
    quality: int,
    created_by: uuid.UUID | None,
) -> AsyncIterator[ImageAsset]:
    """Render `spec`, store its files and give the (unsaved) row; the files are deleted again
    if the block fails."""
    encoded, elapsed_ms = await render(provider=provider, spec=spec, quality=quality)
    async with stored_files(storage, encoded) as files:
        yield new_row(
            files,
            subject_type=spec.subject_type,
            subject_name=spec.subject_name,
            component=component,
            prompt=spec.prompt,
            custom_prompt=spec.custom_prompt,
            aspect_ratio=spec.aspect_ratio,
            provider=provider.name,
            generation_time_ms=elapsed_ms,
            created_by=created_by,
        )


async def create(
    session: AsyncSession,
    *,
    storage: Storage,
    provider: ImageProvider,
    data: ImageGenerate,
    quality: int,
    created_by: uuid.UUID | None,
) -> ImageAsset:
    spec = GenerationSpec(
        subject_type=data.subject_type,
        subject_name=data.subject_name,
        prompt=data.prompt,
        custom_prompt=data.custom_prompt,
        aspect_ratio=data.aspect_ratio,
        seed=data.seed,
    )
    async with generated(
        storage,
        provider=provider,
        spec=spec,
        component=data.component,
        quality=quality,
        created_by=created_by,
    ) as row:
        session.add(row)
        await session.commit()
    return row


async def get_or_raise(
    session: AsyncSession, *, image_id: int, include_deleted: bool = False
) -> ImageAsset:
    row = await session.get(ImageAsset, image_id)
    if row is None or (row.is_deleted and not include_deleted):
        raise ImageNotFound(image_id)
    return row


# Each order ends on the id, so pages never overlap or skip between equal timestamps.
_NEWEST = (ImageAsset.created_at.desc(), ImageAsset.id.desc())
_ORDERS: dict[str, tuple[Any, ...]] = {
    "featured": (ImageAsset.is_featured.desc(), *_NEWEST),
    "newest": _NEWEST,
    "oldest": (ImageAsset.created_at.asc(), ImageAsset.id.asc()),
    "most_used": (ImageAsset.use_count.desc(), *_NEWEST),
}


async def get_by_path_or_raise(session: AsyncSession, *, kind: str, name: str) -> str:
    """The storage key `dnd/images/{kind}/{name}` of a live image, else `NotFound`.

    `kind` is `full` or `thumbnails`; both files of an image share its name, and the row
    is found by its full path (indexed). Deleted images are not served, as by `/file`.
    """
    full = f"{FULL_PREFIX}{name}"
    found = await session.scalar(
        select(ImageAsset.id).where(
            ImageAsset.storage_path_full == full, ImageAsset.is_deleted.is_(False)
        )
    )
    if found is None:
        raise NotFound("Image not found", detail={"path": f"dnd/images/{kind}/{name}"})
    return full if kind == "full" else f"{THUMB_PREFIX}{name}"


async def list(
    session: AsyncSession,
    *,
    subject_name: str | None = None,
    subject_type: str | None = None,
    is_featured: bool | None = None,
    sort: str = "featured",
    page: int = 1,
    page_size: int = 20,
) -> dict[str, Any]:
    """Ordered by `sort` (default featured first, then newest); deleted images are not listed."""
    query = select(ImageAsset).where(ImageAsset.is_deleted.is_(False))
    if subject_name is not None:
        query = query.where(ImageAsset.subject_name == subject_name)
    if subject_type is not None:
        query = query.where(ImageAsset.subject_type == subject_type)
    if is_featured is not None:
        query = query.where(ImageAsset.is_featured.is_(is_featured))
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = await session.scalars(
        query.order_by(*_ORDERS[sort]).limit(page_size).offset((page - 1) * page_size)
    )
    return {
        "items": builtins.list(rows),
        "total": total,
        "total_items": total,
        "page": page,
        "page_size": page_size,
        "total_pages": math.ceil(total / page_size) if total else 0,
        "sort": sort,
    }


async def read_base64(storage: Storage, row: ImageAsset) -> str:
    return base64.b64encode(await storage.get(row.storage_path_full)).decode("ascii")


async def mark_used(session: AsyncSession, *, image_id: int) -> None:
    """One more use, counted in the database (no read-modify-write race)."""
    await session.execute(
        update(ImageAsset)
        .where(ImageAsset.id == image_id)
        .values(use_count=ImageAsset.use_count + 1)
        .execution_options(synchronize_session=False)
    )


async def update_featured(
    session: AsyncSession, *, image: ImageAsset, is_featured: bool | None
) -> ImageAsset:
    """Set the flag, or toggle it when no value is given (the seed's "toggle")."""
    image.is_featured = (not image.is_featured) if is_featured is None else is_featured
    image.updated_at = utcnow()
    await session.commit()
    return image


async def delete(session: AsyncSession, *, image: ImageAsset) -> None:
    """Soft delete: hidden from search and reads, files kept so it can be restored."""
    image.is_deleted = True
    image.deleted_at = image.updated_at = utcnow()
    await session.commit()


async def restore(session: AsyncSession, *, image: ImageAsset) -> ImageAsset:
    image.is_deleted = False
    image.deleted_at = None
    image.updated_at = utcnow()
    await session.commit()
    return image


async def count_total(session: AsyncSession) -> dict[str, Any]:
    """The /health counter: `apps.dnd.images.total` (deleted images not counted)."""
    total = await session.scalar(
        select(func.count()).select_from(ImageAsset).where(ImageAsset.is_deleted.is_(False))
    )
    return {"images": {"total": int(total or 0)}}
