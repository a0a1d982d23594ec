"""Request and response shapes of the dnd app, as seed 002's clients send and read them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from worldbase.core.schemas import Schema, examples

SubjectType = Literal["scene", "item", "character"]
AspectRatio = Literal["1:1", "16:9", "4:3", "9:16"]
# Search order: featured first then newest (default), newest, oldest, most used.
ImageSort = Literal["featured", "newest", "oldest", "most_used"]

# Letters (any script), digits, spaces and the punctuation item and place names use.
NAME_PATTERN = r"^[\w][\w '\-.,()&!:+#]*$"
COMPONENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"
# Markup or script in a prompt is refused outright: prompts end up in galleries and logs.
_DANGEROUS = re.compile(
    r"<\s*/?\s*[a-z!?]|javascript\s*:|vbscript\s*:|data\s*:\s*text/html|\bon[a-z]+\s*=",
    re.IGNORECASE,
)


def _utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes; every stored time is UTC, and clients should see so.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UTCDatetime = Annotated[datetime, AfterValidator(_utc)]


def refuse_markup(value: str | None) -> str | None:
    if value is not None and _DANGEROUS.search(value):
        raise ValueError("must not contain markup or script")
    return value


IMAGE_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "subject_type": "item",
    "subject_name": "Flame Tongue",
    "component": "item-card",
    "prompt": "A longsword wreathed in fire, glowing runes on the blade",
    "custom_prompt": None,
    "aspect_ratio": "1:1",
    "provider": "procedural",
    "width": 1024,
    "height": 1024,
    "storage_path_full": "dnd/images/full/3f0c9d2a.webp",
    "storage_path_thumbnail": "dnd/images/thumbnails/3f0c9d2a.webp",
    "file_size_bytes": 48213,
    "generation_time_ms": 212,
    "created_at": "2026-11-23T07:10:00+00:00",
    "is_featured": False,
    "is_deleted": False,
    "use_count": 3,
    "created_by": None,
    "file_url": "/api/v1/images/42/file",
    "thumbnail_url": "/api/v1/images/42/thumbnail",
}


class ImageGenerate(Schema):
    model_config = examples(
        {
            "subject_type": "item",
            "subject_name": "Flame Tongue",
            "prompt": "A longsword wreathed in fire, glowing runes on the blade",
            "aspect_ratio": "1:1",
            "component": "item-card",
        }
    )

    subject_type: SubjectType
    subject_name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    prompt: str = Field(min_length=10, max_length=1000)
    custom_prompt: str | None = Field(default=None, min_length=10, max_length=1000)
    aspect_ratio: AspectRatio = "1:1"
    component: str = Field(
        default="default", min_length=1, max_length=50, pattern=COMPONENT_PATTERN
    )
    # Same seed, same prompt: same procedural picture. Derived from the prompt when omitted.
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)

    @field_validator("subject_name", "prompt", "custom_prompt", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("prompt", "custom_prompt")
    @classmethod
    def _no_markup(cls, value: str | None) -> str | None:
        return refuse_markup(value)

    @model_validator(mode="after")
    def _custom_prompt_names_subject(self) -> ImageGenerate:
        # The game appends the user's own words; they must still be about this subject.
        if self.custom_prompt and self.subject_name.lower() not in self.custom_prompt.lower():
            raise ValueError("custom_prompt must mention subject_name")
        return self


class ImageRead(Schema):
    model_config = examples(IMAGE_EXAMPLE)

    id: int
    subject_type: str
    subject_name: str
    component: str
    prompt: str
    custom_prompt: str | None
    aspect_ratio: str
    provider: str
    width: int
    height: int
    storage_path_full: str
    storage_path_thumbnail: str
    file_size_bytes: int
    generation_time_ms: int
    created_at: UTCDatetime
    is_featured: bool
    is_deleted: bool
    use_count: int
    created_by: Any = None
    file_url: str = ""
    thumbnail_url: str = ""

    @model_validator(mode="after")
    def _urls(self) -> ImageRead:
        self.file_url = f"/api/v1/images/{self.id}/file"
        self.thumbnail_url = f"/api/v1/images/{self.id}/thumbnail"
        if self.created_by is not None:
            self.created_by = str(self.created_by)
        return self


class ImageWithData(ImageRead):
    model_config = examples({**IMAGE_EXAMPLE, "base64_data": "UklGRlYAAABXRUJQ..."})

    # The WebP file, base64-encoded; null when `include_data=false`.
    base64_data: str | None = None


class ImagePage(Schema):
    model_config = examples(
        {
            "items": [IMAGE_EXAMPLE],
            "total": 1,
            "total_items": 1,
            "page": 1,
            "page_size": 20,
            "total_pages": 1,
            "sort": "featured",
        }
    )

    items: list[ImageRead]
    total: int
    total_items: int  # the seed's name for `total`
    page: int
    page_size: int
    total_pages: int
    sort: ImageSort


class FeatureUpdate(Schema):
    model_config = examples({"is_featured": True})

    is_featured: bool | None = None


class MessageRead(Schema):
    model_config = examples({"status": "ok", "message": "Image 42 deleted", "id": 42})

    status: str = "ok"
    message: str
    id: int | None = None


SCENE_TEXT_PATTERN = r"^[^<>]*\S[^<>]*$"
SceneField = Annotated[str, Field(min_length=1, max_length=100, pattern=SCENE_TEXT_PATTERN)]


class SceneGenerate(Schema):
    """The JSON body the seed's frontend example sends (`{location, time_of_day, weather}`).

    Every field may also come in the query string; a field given in both is taken from
    the query string (the seed's curl examples), and a null or missing one from the body.
    """

    model_config = examples(
        {"location": "Tavern", "time_of_day": "Evening", "weather": "Rain"}, forbid=True
    )

    location: SceneField | None = None
    time_of_day: SceneField | None = None
    weather: SceneField | None = None
    force_regenerate: bool | None = None


SCENE_EXAMPLE: dict[str, Any] = {
    "cached": True,
    "cache_key": "tavern|evening|rain",
    "location": "Tavern",
    "time_of_day": "Evening",
    "weather": "Rain",
    "image_id": 42,
    "hit_count": 7,
    "miss_count": 1,
    "created_at": "2026-11-23T07:10:00+00:00",
    "expires_at": "2026-11-30T07:10:00+00:00",
    "image": {**IMAGE_EXAMPLE, "subject_type": "scene", "base64_data": "UklGRlYAAABXRUJQ..."},
}


class SceneRead(Schema):
    model_config = examples(SCENE_EXAMPLE)

    cached: bool
    cache_key: str
    location: str
    time_of_day: str
    weather: str
    image_id: int
    hit_count: int
    miss_count: int
    created_at: UTCDatetime
    expires_at: UTCDatetime
    image: ImageWithData


class CacheStatsRead(Schema):
    model_config = examples(
        {
            "total_entries": 12,
            "active_entries": 10,
            "expired_entries": 2,
            "total_hits": 140,
            "total_misses": 14,
            "hit_rate": 0.909,
            "expiry_days": 7,
            "oldest_entry_at": "2026-11-20T07:10:00+00:00",
            "newest_entry_at": "2026-11-23T07:10:00+00:00",
        }
    )

    total_entries: int
    active_entries: int
    expired_entries: int
    total_hits: int
    total_misses: int
    hit_rate: float
    expiry_days: int
    oldest_entry_at: UTCDatetime | None
    newest_entry_at: UTCDatetime | None


class CountRead(Schema):
    model_config = examples({"status": "ok", "deleted": 3, "message": "3 deleted"})

    status: str = "ok"
    deleted: int
    message: str


class OrphanCleanupRead(Schema):
    model_config = examples(
        {
            "status": "ok",
            "dry_run": False,
            "rows_without_files": 1,
            "files_without_rows": 2,
            "rows_deleted": 1,
            "files_deleted": 2,
        }
    )

    status: str = "ok"
    dry_run: bool
    rows_without_files: int
    files_without_rows: int
    rows_deleted: int
    files_deleted: int


class StatsRead(Schema):
    model_config = examples(
        {
            "images": {
                "total": 12,
                "active": 11,
                "deleted": 1,
                "featured": 2,
                "by_type": {"scene": 4, "item": 6, "character": 1},
                "total_size_mb": 0.61,
                "total_uses": 40,
            },
            "scene_cache": {"total_entries": 4, "active_entries": 4, "expired_entries": 0},
            "provider": "procedural",
            "timestamp": "2026-11-23T07:10:00+00:00",
        }
    )

    images: dict[str, Any]
    scene_cache: dict[str, Any]
    provider: str
    timestamp: datetime


class MigrationError(Schema):
    key: str
    error: str


class MigrationRead(Schema):
    model_config = examples(
        {
            "status": "partial",
            "scenes": 3,
            "items": 5,
            "skipped": 0,
            "errors": [{"key": "item_image_Rope", "error": "images[0]: not an image"}],
            "ignored": [{"key": "dnd-theme", "error": "not a scene or item image key"}],
            "total_size_mb": 1.42,
        }
    )

    status: Literal["success", "partial", "failed", "empty"]
    scenes: int
    items: int
    skipped: int
    errors: list[MigrationError]
    ignored: list[MigrationError]  # keys that hold no scene or item image
    total_size_mb: float


class LocalStorageDump(Schema):
    """The game's LocalStorage: seed 002's two groups, or the raw keys (see localstorage.py)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "scene_cache": {
                        "scene_cache_Tavern_Evening_Light_Rain": {
                            "image": "UklGRlYAAABXRUJQ...",
                            "timestamp": "2025-10-20T18:00:00Z",
                        }
                    },
                    "item_images": {
                        "item_image_Healing Potion": {
                            "images": [
                                {
                                    "image": "iVBORw0KGgoAAAANSUhEUgAA...",
                                    "custom_prompt": None,
                                    "is_featured": True,
                                }
                            ]
                        }
                    },
                },
                {
                    "scene_cache_Tavern_Evening_Rain": '{"image": "iVBORw0KGgo..."}',
                    "item_image_Dagger": '{"images": [{"image": "iVBORw0KGgo..."}]}',
                    "dnd-theme": "cyber",
                },
            ]
        },
    )

    # Values are checked entry by entry (a bad one is reported, the rest still migrate).
    scene_cache: dict[str, Any] = Field(default_factory=dict)
    item_images: dict[str, Any] = Field(default_factory=dict)
