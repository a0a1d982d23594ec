"""The bestiary's settings (seed 004): photogrammetry uploads, models, rate limits."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from worldbase.settings import AppSettings, env


class BestiarySettings(AppSettings):
    model_config = SettingsConfigDict(env_prefix="bestiary_")

    # One reconstruction upload request; photos (or video frames) per upload; uncompressed
    # total of a zip upload; frames sampled from an uploaded video.
    upload_max_bytes: int = Field(200 * 1024**2, validation_alias=env("bestiary_upload_max_bytes"))
    max_images: int = Field(300, validation_alias=env("bestiary_max_images"))
    zip_max_bytes: int = Field(1024**3, validation_alias=env("bestiary_zip_max_bytes"))
    video_frames: int = Field(36, validation_alias=env("bestiary_video_frames"))
    # Rate limits per client address (seed 004: "Implement rate limiting"): character,
    # favorite, export and job writes; portrait/model uploads, photo uploads and processing.
    write_rate_limit: str = Field("60/minute", validation_alias=env("bestiary_write_rate_limit"))
    upload_rate_limit: str = Field("10/minute", validation_alias=env("bestiary_upload_rate_limit"))
    # Seconds to fetch a character's `image_path` / `model_path` URL (504 when exceeded).
    fetch_timeout: float = Field(30.0, validation_alias=env("bestiary_fetch_timeout"))
