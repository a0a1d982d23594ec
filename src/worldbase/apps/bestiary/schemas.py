"""Request and response schemas of the bestiary app (characters, favorites, exports,
reconstruction jobs)."""

from __future__ import annotations

import enum
import uuid
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic.config import JsonDict

from worldbase.core.schemas import InputSchema, Schema, SerialId, UTCDateTime, examples

_AT = "2026-11-23T08:00:00Z"


# --- Characters -----------------------------------------------------------------------------

_CHARACTER_VALUES: JsonDict = {
    "name": "Frost Troll",
    "race": "Troll",
    "level": 24,
    "location": "The Throat of the World",
    "faction": "Creatures",
    "difficulty": "hard",
    "description": "A white-furred troll of the high mountains; regenerates quickly.",
    "stats": {"health": 580, "magicka": 0, "stamina": 380},
    "skills": {"one_handed": 60, "block": 40},
    "combat": {"weakness": "fire", "damage": 40},
}
_CHARACTER_EXAMPLE: JsonDict = {
    "id": 7,
    **_CHARACTER_VALUES,
    "image_path": "bestiary/characters/7/image-3f2a9c1e.webp",
    "thumbnail_path": "bestiary/characters/7/thumb-3f2a9c1e.webp",
    "model_path": "bestiary/characters/7/model-9b1c4d2e.glb",
    "image_url": "/api/characters/7/image",
    "thumbnail_url": "/api/characters/7/image?size=thumbnail",
    "model_url": "/api/characters/7/model",
    "created_at": _AT,
    "updated_at": _AT,
}

ImagePathField = Field(
    default=None,
    max_length=2048,
    description="http(s) URL of a portrait to fetch (under the source policy; any image "
    "format, stored as WebP + thumbnail; the stored path is returned). On update `null` "
    "removes the portrait and the stored path itself changes nothing.",
    examples=["https://assets.example.org/bestiary/frost-troll.png"],
)
ModelPathField = Field(
    default=None,
    max_length=2048,
    description="http(s) URL of a 3D model to fetch (glTF/GLB, OBJ, PLY, STL or OFF; "
    "validated, stored as GLB). On update `null` removes the model.",
    examples=["https://assets.example.org/bestiary/frost-troll.glb"],
)


class _CharacterFields(InputSchema):
    """A character's writable fields, each optional (as an update takes them)."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    race: str | None = Field(default=None, max_length=100)
    level: int | None = Field(default=None, ge=0, le=10_000)
    location: str | None = Field(default=None, max_length=255)
    faction: str | None = Field(default=None, max_length=100)
    difficulty: str | None = Field(default=None, max_length=50)
    description: str | None = Field(default=None, max_length=20_000)
    stats: dict[str, Any] | None = None
    skills: dict[str, Any] | None = None
    combat: dict[str, Any] | None = None
    image_path: str | None = ImagePathField
    model_path: str | None = ModelPathField


class CharacterCreate(_CharacterFields):
    name: str = Field(min_length=1, max_length=255)

    model_config = examples(_CHARACTER_VALUES, forbid=True)


class CharacterUpdate(_CharacterFields):
    """Partial update: only the fields sent change (`null` clears an optional field)."""

    model_config = examples(
        {"level": 30, "combat": {"weakness": "fire"}},
        {"image_path": "https://assets.example.org/bestiary/frost-troll.png"},
        forbid=True,
    )

    @model_validator(mode="after")
    def _name_not_null(self) -> CharacterUpdate:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class CharacterRead(Schema):
    id: int
    name: str
    race: str | None
    level: int | None
    location: str | None
    faction: str | None
    difficulty: str | None
    description: str | None
    image_path: str | None
    thumbnail_path: str | None
    model_path: str | None
    image_url: str | None = None
    thumbnail_url: str | None = None
    model_url: str | None = None
    stats: dict[str, Any] | None
    skills: dict[str, Any] | None
    combat: dict[str, Any] | None
    created_at: UTCDateTime
    updated_at: UTCDateTime

    model_config = examples(_CHARACTER_EXAMPLE)

    @model_validator(mode="after")
    def _urls(self) -> CharacterRead:
        base = f"/api/characters/{self.id}"
        self.image_url = f"{base}/image" if self.image_path else None
        self.thumbnail_url = f"{base}/image?size=thumbnail" if self.thumbnail_path else None
        self.model_url = f"{base}/model" if self.model_path else None
        return self


class CharacterPage(Schema):
    items: list[CharacterRead]
    total: int
    limit: int
    offset: int

    model_config = examples({"items": [_CHARACTER_EXAMPLE], "total": 1, "limit": 20, "offset": 0})


class CharacterSort(enum.StrEnum):
    name = "name"
    name_desc = "-name"
    level = "level"
    level_desc = "-level"
    created_at = "created_at"
    created_at_desc = "-created_at"
    id = "id"


# --- Favorites ------------------------------------------------------------------------------


class FavoriteRead(Schema):
    character_id: int
    created_at: UTCDateTime
    character: CharacterRead

    model_config = examples({"character_id": 7, "created_at": _AT, "character": _CHARACTER_EXAMPLE})


class FavoritePage(Schema):
    items: list[FavoriteRead]
    total: int
    limit: int
    offset: int

    model_config = examples(
        {
            "items": [{"character_id": 7, "created_at": _AT, "character": _CHARACTER_EXAMPLE}],
            "total": 1,
            "limit": 50,
            "offset": 0,
        }
    )


# --- Exports --------------------------------------------------------------------------------


class MeshFormat(enum.StrEnum):
    obj = "obj"
    ply = "ply"
    stl = "stl"
    gltf = "gltf"
    glb = "glb"


class ExportCreate(InputSchema):
    character_id: SerialId
    format: MeshFormat

    model_config = examples({"character_id": 7, "format": "obj"}, forbid=True)


_EXPORT_EXAMPLE: JsonDict = {
    "id": 12,
    "export_id": 12,
    "character_id": 7,
    "format": "obj",
    "status": "completed",
    "file_path": "bestiary/exports/12/frost-troll.zip",
    "error": None,
    "created_at": _AT,
    "completed_at": _AT,
    "download_url": "/api/export/12",
    "reused": False,
}


class ExportRead(Schema):
    id: int
    export_id: int = 0
    character_id: int
    format: str
    status: str
    file_path: str | None
    error: str | None
    created_at: UTCDateTime
    completed_at: UTCDateTime | None
    download_url: str | None = None
    reused: bool = False

    model_config = examples(_EXPORT_EXAMPLE)

    @model_validator(mode="after")
    def _derived(self) -> ExportRead:
        self.export_id = self.id
        self.download_url = f"/api/export/{self.id}" if self.status == "completed" else None
        return self


# --- Reconstruction -------------------------------------------------------------------------


class UploadRead(Schema):
    upload_id: uuid.UUID
    image_count: int
    source: str
    total_bytes: int

    model_config = examples(
        {
            "upload_id": "0b7f6a52-4a8e-4d0e-9d4c-2f1f3f0a9b11",
            "image_count": 24,
            "source": "images",
            "total_bytes": 2_456_112,
        }
    )


class Quality(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class Meshing(enum.StrEnum):
    poisson = "poisson"
    convex_hull = "convex_hull"


class ReconstructOptions(InputSchema):
    quality: Quality = Quality.medium
    max_image_size: int | None = Field(
        default=None, ge=128, le=4096, description="Longest side photos are scaled to"
    )
    meshing: Meshing = Meshing.poisson
    target_faces: int | None = Field(default=None, ge=100, le=500_000)

    model_config = examples({"quality": "medium", "max_image_size": 1600, "meshing": "poisson"})


class ReconstructCreate(InputSchema):
    upload_id: uuid.UUID
    options: ReconstructOptions = Field(default_factory=ReconstructOptions)

    model_config = examples(
        {
            "upload_id": "0b7f6a52-4a8e-4d0e-9d4c-2f1f3f0a9b11",
            "options": {"quality": "medium", "meshing": "poisson"},
        },
        forbid=True,
    )


ReconstructStatusValue = Literal["queued", "running", "completed", "failed", "cancelled"]
_JOB_ID = "5c0e8a3b-2f4d-4b6a-8e1c-9d7f3a2b1c0d"


class ReconstructQueued(Schema):
    job_id: uuid.UUID
    status: ReconstructStatusValue

    model_config = examples({"job_id": _JOB_ID, "status": "queued"})


class ReconstructStatus(Schema):
    job_id: uuid.UUID
    upload_id: uuid.UUID | None
    status: ReconstructStatusValue
    progress: int = Field(ge=0, le=100)
    stage: str
    message: str | None
    error: str | None
    log: list[str]
    options: dict[str, Any]
    stats: dict[str, Any] | None
    result_url: str | None
    created_at: UTCDateTime
    updated_at: UTCDateTime

    model_config = examples(
        {
            "job_id": _JOB_ID,
            "upload_id": "0b7f6a52-4a8e-4d0e-9d4c-2f1f3f0a9b11",
            "status": "running",
            "progress": 45,
            "stage": "mapping",
            "message": "incremental mapping",
            "error": None,
            "log": ["features: 24 images, 61,204 keypoints", "matching: 276 pairs"],
            "options": {"quality": "medium", "meshing": "poisson"},
            "stats": None,
            "result_url": None,
            "created_at": _AT,
            "updated_at": _AT,
        }
    )


class AttachResult(InputSchema):
    character_id: SerialId

    model_config = examples({"character_id": 7}, forbid=True)
