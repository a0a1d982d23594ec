"""The D&D app's settings (`DND_*`; seed 002's names, e.g. IMAGE_PROVIDER, still work)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from worldbase.settings import AppSettings, ConfigurationError, env


class DndSettings(AppSettings):
    model_config = SettingsConfigDict(env_prefix="dnd_")

    # Image provider: auto = gemini with GEMINI_API_KEY, else automatic1111 with
    # SD_WEBUI_URL, else procedural (offline); openai = an OpenAI-compatible images API.
    # Providers on loopback/private addresses must be in WORLDBASE_SOURCE_ALLOWLIST.
    image_provider: Literal["auto", "procedural", "gemini", "openai", "automatic1111"] = Field(
        default="auto", validation_alias=env("dnd_image_provider", "image_provider")
    )
    gemini_api_key: str | None = Field(
        default=None, validation_alias=env("dnd_gemini_api_key", "gemini_api_key")
    )
    # Points Google's SDK at another endpoint (a proxy, or a local fake in tests).
    gemini_base_url: str | None = Field(
        default=None, validation_alias=env("dnd_gemini_base_url", "gemini_base_url")
    )
    openai_api_key: str | None = Field(
        default=None, validation_alias=env("dnd_openai_api_key", "openai_api_key")
    )
    # With or without the trailing /v1.
    openai_base_url: str = Field(
        default="https://api.openai.com/v1",
        validation_alias=env("dnd_openai_base_url", "openai_base_url"),
    )
    openai_image_model: str = Field(
        default="gpt-image-1", validation_alias=env("dnd_openai_image_model", "openai_image_model")
    )
    # AUTOMATIC1111 / Forge started with --api.
    sd_webui_url: str | None = Field(
        default=None, validation_alias=env("dnd_sd_webui_url", "sd_webui_url")
    )
    sd_webui_steps: int = Field(
        default=20, ge=1, le=150, validation_alias=env("dnd_sd_webui_steps", "sd_webui_steps")
    )
    image_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        le=600,
        validation_alias=env("dnd_image_timeout_seconds", "image_timeout_seconds"),
    )
    # Seed 002's clients send no credentials; true requires a bearer token for writes.
    require_auth: bool = Field(default=False, validation_alias=env("dnd_require_auth"))
    max_requests_per_minute: int = Field(
        default=10, validation_alias=env("dnd_max_requests_per_minute", "max_requests_per_minute")
    )
    cache_expiry_days: int = Field(
        default=7, validation_alias=env("dnd_cache_expiry_days", "cache_expiry_days")
    )

    def check(self) -> None:
        if self.image_provider == "gemini" and not self.gemini_api_key:
            raise ConfigurationError("IMAGE_PROVIDER=gemini needs GEMINI_API_KEY")
        if self.image_provider == "automatic1111" and not self.sd_webui_url:
            raise ConfigurationError("IMAGE_PROVIDER=automatic1111 needs SD_WEBUI_URL")
        official = self.openai_base_url.rstrip("/").startswith("https://api.openai.com")
        if self.image_provider == "openai" and official and not self.openai_api_key:
            raise ConfigurationError(
                "IMAGE_PROVIDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL)"
            )
