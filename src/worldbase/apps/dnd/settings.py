"""The D&D app's settings (`DND_*`; seed 002's names, e.g. IMAGE_PROVIDER, still work)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from worldbase.settings import AppSettings, ConfigurationError, env


def _named(name: str, default: Any, **constraints: Any) -> Any:
    """A field read from DND_<NAME>, else from the seed's <NAME>."""
    return Field(default=default, validation_alias=env(f"dnd_{name}", name), **constraints)


class DndSettings(AppSettings):
    model_config = SettingsConfigDict(env_prefix="dnd_")

    # Image provider: auto = gemini with GEMINI_API_KEY, else automatic1111 with
    # SD_WEBUI_URL, else procedural (offline); openai = an OpenAI-compatible images API.
    # Providers on loopback/private addresses must be in WORLDBASE_SOURCE_ALLOWLIST.
    image_provider: Literal["auto", "procedural", "gemini", "openai", "automatic1111"] = _named(
        "image_provider", "auto"
    )
    gemini_api_key: str | None = _named("gemini_api_key", None)
    # Points Google's SDK at another endpoint (a proxy, or a local fake in tests).
    gemini_base_url: str | None = _named("gemini_base_url", None)
    openai_api_key: str | None = _named("openai_api_key", None)
    # With or without the trailing /v1.
    openai_base_url: str = _named("openai_base_url", "https://api.openai.com/v1")
    openai_image_model: str = _named("openai_image_model", "gpt-image-1")
    # AUTOMATIC1111 / Forge started with --api.
    sd_webui_url: str | None = _named("sd_webui_url", None)
    sd_webui_steps: int = _named("sd_webui_steps", 20, ge=1, le=150)
    image_timeout_seconds: float = _named("image_timeout_seconds", 120.0, gt=0, le=600)
    # Seed 002's clients send no credentials; true requires a bearer token for writes.
    require_auth: bool = Field(default=False, validation_alias=env("dnd_require_auth"))
    max_requests_per_minute: int = _named("max_requests_per_minute", 10)
    cache_expiry_days: int = _named("cache_expiry_days", 7)

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
