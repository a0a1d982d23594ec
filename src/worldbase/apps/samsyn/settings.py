"""SamSyn's settings (`SAMSYN_*`; the WORLDBASE_* names they had first still work)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from worldbase.settings import AppSettings, env


def _named(name: str, default: Any, **constraints: Any) -> Any:
    """A field read from SAMSYN_<NAME>, else from its former WORLDBASE_<NAME>."""
    return Field(
        default=default, validation_alias=env(f"samsyn_{name}", f"worldbase_{name}"), **constraints
    )


class SamsynSettings(AppSettings):
    model_config = SettingsConfigDict(env_prefix="samsyn_")

    # Seconds a WMS gets to answer (GetMap, GetCapabilities) before the request is a 504.
    wms_timeout: float = _named("wms_timeout", 15.0, gt=0, le=300)
    # Largest GeoTIFF `POST /api/layers/upload` takes (at most 4 GiB, the route's body cap).
    upload_max_bytes: int = _named("upload_max_bytes", 1024**3, gt=0, le=4 * 1024**3)
    # Per GeoTIFF upload, read from its header before anything is stored or queued:
    # width x height x bands, and that many pixels at the data type's size (decompressed).
    upload_max_pixels: int = _named("upload_max_pixels", 1024**3, gt=0)
    upload_max_decompressed_bytes: int = _named("upload_max_decompressed_bytes", 4 * 1024**3, gt=0)
    # GeoJSON positions per feature-write request, all features together; past it a 422.
    max_request_vertices: int = _named("max_request_vertices", 1_000_000, gt=0)

    # Global Fishing Watch (`/api/v1/gfw/...`, SamSyn's proxy): the API token (GFW_API_TOKEN,
    # SamSyn's name; never logged or sent to a client; unset: the proxy answers 503), the API's
    # base URL, how long a request to it may take (then 504), and how long a tile is cached.
    gfw_api_token: SecretStr | None = Field(
        default=None, validation_alias=env("gfw_api_token", "samsyn_gfw_api_token")
    )
    gfw_api_url: str = Field(
        default="https://gateway.api.globalfishingwatch.org",
        validation_alias=env("gfw_api_url", "samsyn_gfw_api_url"),
        pattern=r"^https?://[^\s?#]+$",
    )
    gfw_timeout: float = Field(
        default=30.0, validation_alias=env("gfw_timeout", "samsyn_gfw_timeout"), gt=0, le=300
    )
    gfw_tile_max_age: int = Field(
        default=3600,
        validation_alias=env("gfw_tile_max_age", "samsyn_gfw_tile_max_age"),
        ge=0,
        le=7 * 24 * 3600,
    )
