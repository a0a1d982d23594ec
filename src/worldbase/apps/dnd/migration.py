"""One-click migration of the game's LocalStorage into the API (seed 002's migrate endpoint).

Each entry is checked and stored on its own (files, then its row, one commit): a bad
entry is reported as `{key, error}` while the good ones migrate. Running it twice creates
nothing new: a scene whose cache key exists is skipped, and an item image is recognised
by the SHA-256 of its original bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.dnd import imaging, localstorage, scenes, service
from worldbase.apps.dnd.localstorage import ITEM_PREFIX, SCENE_PREFIX
from worldbase.apps.dnd.models import ImageAsset, SceneCache
from worldbase.apps.dnd.schemas import NAME_PATTERN, refuse_markup
from worldbase.apps.dnd.settings import DndSettings
from worldbase.core.db import utcnow
from worldbase.core.errors import BadInput
from worldbase.core.images import WebpImage, encode_webp, open_image
from worldbase.core.storage import Storage
from worldbase.settings import Settings

# Browsers cap LocalStorage at 5-10 MB per origin; the route accepts a generous multiple.
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 2000
_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)
_NAME = re.compile(NAME_PATTERN)


@dataclass
class Report:
    scenes: int = 0
    items: int = 0
    skipped: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)
    total_bytes: int = 0

    @property
    def status(self) -> str:
        done = self.scenes + self.items + self.skipped
        if self.errors:
            return "partial" if done else "failed"
        return "success" if done else "empty"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "scenes": self.scenes,
            "items": self.items,
            "skipped": self.skipped,
            "errors": self.errors,
            "ignored": self.ignored,
            "total_size_mb": round(self.total_bytes / 1024**2, 3),
        }


def decode_base64_image(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise BadInput("image must be a non-empty base64 string")
    text = _DATA_URL.sub("", value.strip(), count=1)
    if len(text) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise BadInput(f"image is larger than {MAX_IMAGE_BYTES // 1024**2} MiB")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("image is not valid base64") from None


def parse_scene_key(key: str) -> tuple[str, str, str]:
    """`scene_cache_<Location>_<TimeOfDay>_<Weather>`; the weather keeps any underscores."""
    if not key.startswith(SCENE_PREFIX):
        raise BadInput(f"scene keys start with {SCENE_PREFIX!r}")
    parts = key[len(SCENE_PREFIX) :].split("_", 2)
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise BadInput("scene key must be scene_cache_<Location>_<TimeOfDay>_<Weather>")
    return _check_scene_names(*parts)


def _check_scene_names(location: str, time_of_day: str, weather: str) -> tuple[str, str, str]:
    location, time_of_day, weather = location.strip(), time_of_day.strip(), weather.strip()
    if len(location) > 100 or len(time_of_day) > 50 or len(weather) > 100:
        raise BadInput("location, time of day or weather is too long")
    for name in (location, time_of_day, weather):
        if "<" in name or ">" in name:
            raise BadInput("location, time of day and weather must not contain markup")
    return location, time_of_day, weather


def parse_item_key(key: str) -> str:
    if not key.startswith(ITEM_PREFIX):
        raise BadInput(f"item keys start with {ITEM_PREFIX!r}")
    return key[len(ITEM_PREFIX) :].strip()


def _check_name(name: str) -> str:
    if not name or len(name) > 200 or not _NAME.match(name):
        raise BadInput("item name is empty, too long or has characters names cannot have")
    return name


def _migrated_row(
    files: service.StoredFiles,
    digest: str,
    *,
    kind: str,
    name: str,
    prompt: str,
    custom_prompt: str | None,
    created_by: uuid.UUID | None,
    is_featured: bool = False,
) -> ImageAsset:
    """A gallery row for a picture brought over from LocalStorage (no provider, no render time)."""
    return service.new_row(
        files,
        subject_type=kind,
        subject_name=name,
        component=kind,
        prompt=prompt,
        custom_prompt=custom_prompt,
        aspect_ratio=imaging.aspect_ratio_of(files.encoded.width, files.encoded.height),
        provider="localstorage",
        generation_time_ms=0,
        created_by=created_by,
        source_hash=digest,
        is_featured=is_featured,
    )


async def _prepare(value: Any, quality: int) -> tuple[WebpImage, str, int]:
    raw = decode_base64_image(value)
    picture = await asyncio.to_thread(open_image, raw)
    encoded = await asyncio.to_thread(encode_webp, picture, quality=quality)
    return encoded, hashlib.sha256(raw).hexdigest(), len(raw)


async def migrate(
    session: AsyncSession,
    *,
    storage: Storage,
    settings: Settings,
    dump: dict[str, Any],
    created_by: uuid.UUID | None,
) -> dict[str, Any]:
    """Migrate a dump in any shape `localstorage.read_dump` reads."""
    entries = localstorage.read_dump(dump)
    if len(entries) > MAX_ENTRIES:
        raise BadInput(f"At most {MAX_ENTRIES} LocalStorage entries per migration")
    report = Report(errors=entries.errors, ignored=entries.ignored)
    for scene in entries.scenes:
        try:
            await _scene(session, storage, settings, scene, created_by, report)
        except BadInput as exc:
            await session.rollback()
            report.errors.append({"key": scene.key, "error": exc.message})
    for item in entries.items:
        try:
            name = item.name if item.name is not None else parse_item_key(item.key)
            name = _check_name(name.strip())
            value = item.value
            images = value.get("images") if isinstance(value, dict) else None
            if not isinstance(images, list):
                raise BadInput("item entry must be {images: [...]}")
        except BadInput as exc:
            report.errors.append({"key": item.key, "error": exc.message})
            continue
        for index, entry in enumerate(images):
            try:
                image = localstorage.item_image(entry)
                await _item(session, storage, settings, name, image, created_by, report)
            except BadInput as exc:
                await session.rollback()
                report.errors.append({"key": item.key, "error": f"images[{index}]: {exc.message}"})
    return report.as_dict()


async def _scene(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    scene: localstorage.SceneEntry,
    created_by: uuid.UUID | None,
    report: Report,
) -> None:
    if scene.names is None:
        location, time_of_day, weather = parse_scene_key(scene.key)
    else:
        location, time_of_day, weather = _check_scene_names(*scene.names)
    value = scene.value
    if not isinstance(value, dict):
        raise BadInput("scene entry must be {image, timestamp}")
    ckey = scenes.cache_key(location, time_of_day, weather)
    if await session.scalar(select(SceneCache.id).where(SceneCache.cache_key == ckey)):
        report.skipped += 1
        return
    encoded, digest, size = await _prepare(localstorage.image_of(value), settings.webp_quality)
    now = utcnow()
    async with service.stored_files(storage, encoded) as files:
        image = _migrated_row(
            files,
            digest,
            kind="scene",
            name=location,
            prompt=f"{location} at {time_of_day}, {weather} weather (migrated from LocalStorage)",
            custom_prompt=None,
            created_by=created_by,
        )
        session.add(image)
        await session.flush()
        # A migrated scene gets a full expiry from now: the player asked to keep it.
        session.add(
            SceneCache(
                cache_key=ckey,
                location=location,
                time_of_day=time_of_day,
                weather=weather,
                image_id=image.id,
                hit_count=0,
                miss_count=0,
                created_at=now,
                expires_at=now + timedelta(days=settings.app(DndSettings).cache_expiry_days),
            )
        )
        await session.commit()
    report.scenes += 1
    report.total_bytes += size


async def _item(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    name: str,
    entry: Any,
    created_by: uuid.UUID | None,
    report: Report,
) -> None:
    if not isinstance(entry, dict):
        raise BadInput("image entry must be {image, custom_prompt, is_featured}")
    custom = entry.get("custom_prompt")
    if custom is not None and (not isinstance(custom, str) or len(custom) > 1000):
        raise BadInput("custom_prompt must be a string of at most 1000 characters")
    try:
        refuse_markup(custom)
    except ValueError as exc:
        raise BadInput(f"custom_prompt {exc}") from None
    featured = entry.get("is_featured", False)
    if not isinstance(featured, bool):
        raise BadInput("is_featured must be true or false")
    raw_hash = hashlib.sha256(decode_base64_image(entry.get("image"))).hexdigest()
    existing = await session.scalar(
        select(ImageAsset.id).where(
            ImageAsset.source_hash == raw_hash,
            ImageAsset.subject_name == name,
            ImageAsset.subject_type == "item",
        )
    )
    if existing is not None:
        report.skipped += 1
        return
    encoded, digest, size = await _prepare(entry.get("image"), settings.webp_quality)
    async with service.stored_files(storage, encoded) as files:
        session.add(
            _migrated_row(
                files,
                digest,
                kind="item",
                name=name,
                prompt=custom or f"{name} (migrated from LocalStorage)",
                custom_prompt=custom,
                created_by=created_by,
                is_featured=featured,
            )
        )
        await session.commit()
    report.items += 1
    report.total_bytes += size
