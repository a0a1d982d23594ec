"""The habitats app's settings (`HABITATS_*`; seed name HABITAT_RASTER_URL still works)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from worldbase.settings import AppSettings, env


class HabitatsSettings(AppSettings):
    model_config = SettingsConfigDict(env_prefix="habitats_")

    # The habitat classification COG the app paints tiles from (default: the seeded demo).
    raster_url: str | None = Field(
        default=None, validation_alias=env("habitats_raster_url", "habitat_raster_url")
    )
