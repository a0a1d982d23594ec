"""SamSyn's settings (`SAMSYN_*`; the WORLDBASE_* names they had first still work)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from worldbase.settings import AppSettings, env


class SamsynSettings(AppSettings):
    model_config = SettingsConfigDict(env_prefix="samsyn_")

    # Seconds a WMS gets to answer (GetMap, GetCapabilities) before the request is a 504.
    wms_timeout: float = Field(
        default=15.0,
        gt=0,
        le=300,
        validation_alias=env("samsyn_wms_timeout", "worldbase_wms_timeout"),
    )
    # Largest GeoTIFF `POST /api/layers/upload` takes (at most 4 GiB, the route's body cap).
    upload_max_bytes: int = Field(
        default=1024**3,
        gt=0,
        le=4 * 1024**3,
        validation_alias=env("samsyn_upload_max_bytes", "worldbase_upload_max_bytes"),
    )
    # Per GeoTIFF upload, read from its header before anything is stored or queued:
    # width x height x bands, and that many pixels at the data type's size (decompressed).
    upload_max_pixels: int = Field(
        default=1024**3,
        gt=0,
        validation_alias=env("samsyn_upload_max_pixels", "worldbase_upload_max_pixels"),
    )
    upload_max_decompressed_bytes: int = Field(
        default=4 * 1024**3,
        gt=0,
        validation_alias=env(
            "samsyn_upload_max_decompressed_bytes", "worldbase_upload_max_decompressed_bytes"
        ),
    )
    # GeoJSON positions per feature-collection request; past it the request is a 422.
    max_request_vertices: int = Field(
        default=1_000_000,
        gt=0,
        validation_alias=env("samsyn_max_request_vertices", "worldbase_max_request_vertices"),
    )
