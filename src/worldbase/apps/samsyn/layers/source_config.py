"""`source_config` per source type: validated on input, normalised, unknown keys kept.

WMS: `url`, `layers`, `version`, `format`, `transparent`, `temporal`, `dimensions`; a
configuration without `layers` is a draft (saved; its tiles answer 422 until it names them).
GeoTIFF: `delivery` direct|tiles (default tiles), a file (`url`, `cogUrl`: http(s)://, s3:// or
storage://<key>) or a temporal template (`cogUrlTemplate`/`urlTemplate`), `bounds`,
`tileServer`, `tileParams` (TiTiler's render parameters, checked), `processing`.
SamSyn's spellings are taken too: `temporal: true` (with a WMS `timeDimension`) and flat
`bounds: [west, south, east, north]`.
Vector: `geometryType`, `geometryTypes`, `featureCount`, `bounds` and `revision` are
derived by the server from the layer's features; whatever a client sends for them is ignored.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from worldbase.apps.samsyn.models import SourceType
from worldbase.core.errors import BadInput
from worldbase.geo.raster_params import parse_render_params

DERIVED_VECTOR_KEYS = ("geometryType", "geometryTypes", "featureCount", "bounds", "revision")
URL_PATTERN = r"^https?://[^\s]+$"
# A COG: http(s), s3://bucket/key or storage://<key> (an object in Worldbase's storage).
COG_PATTERN = r"^(https?|s3|storage)://[^\s]+$"
TEMPLATE_FIELDS = re.compile(r"\{(year|month|day|YYYY|YYYYMM|YYYYMMDD|MM|DD|time)\}")


class _Config(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _samsyn_spellings(cls, data: Any) -> Any:
        """SamSyn's frontend spells two settings its own way: `temporal: true` (a flag, with
        a WMS's `timeDimension: {extent: "start/end/period"}`) and `bounds` as one flat
        `[west, south, east, north]`; both become this module's forms."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("temporal"), bool):
            data["temporal"] = _temporal_from_flag(data["temporal"], data.get("timeDimension"))
        bounds = data.get("bounds")
        if _flat_box(bounds):
            data["bounds"] = [[bounds[0], bounds[1]], [bounds[2], bounds[3]]]
        return data


def _flat_box(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


# ISO 8601 periods of a WMS time extent ("2024-01-01/2024-12-01/P1M") and our resolutions.
_PERIODS = {"PT1H": "hourly", "P1D": "daily", "P7D": "weekly", "P1W": "weekly", "P1M": "monthly"}
_PERIODS["P1Y"] = "yearly"


def _temporal_from_flag(flag: bool, dimension: Any) -> dict[str, Any] | None:
    """`temporal: true/false` as a temporal setting: the range and step of the WMS time
    extent when the client sent one, else an empty setting the capabilities fill."""
    if not flag:
        return None
    extent = dimension.get("extent") if isinstance(dimension, dict) else None
    parts = extent.split("/") if isinstance(extent, str) else []
    if len(parts) == 3 and parts[2].upper() in _PERIODS:
        return {
            "enabled": True,
            "start": parts[0],
            "end": parts[1],
            "resolution": _PERIODS[parts[2].upper()],
        }
    return {}


class Temporal(_Config):
    enabled: bool = False
    parameter: str = Field(default="TIME", min_length=1, max_length=50)
    start: date | datetime | None = None
    end: date | datetime | None = None
    resolution: Literal["hourly", "daily", "weekly", "monthly", "yearly"] | None = None

    @model_validator(mode="after")
    def _range(self) -> Temporal:
        if self.enabled and (self.start is None or self.end is None):
            raise ValueError("an enabled temporal setting needs 'start' and 'end'")
        if self.start is not None and self.end is not None:
            start, end = _as_datetime(self.start), _as_datetime(self.end)
            if start > end:
                raise ValueError("temporal 'start' is after 'end'")
        return self


def _as_datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime(value.year, value.month, value.day)


class WmsConfig(_Config):
    url: str = Field(pattern=URL_PATTERN, max_length=2048)
    layers: str | None = Field(default=None, min_length=1, max_length=1000)
    version: Literal["1.1.1", "1.3.0"] = "1.3.0"
    format: Literal["image/png", "image/jpeg", "image/webp", "image/gif"] = "image/png"
    transparent: bool = True
    styles: str = ""
    temporal: Temporal | None = None
    dimensions: dict[str, str | int | float] | None = None


Bounds = tuple[tuple[float, float], tuple[float, float]]


def check_bounds(bounds: Bounds | None) -> None:
    if bounds is None:
        return
    (minx, miny), (maxx, maxy) = bounds
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise ValueError("bounds must be [[minLon, minLat], [maxLon, maxLat]] in degrees")
    if minx > maxx or miny > maxy:
        raise ValueError("bounds minimum exceeds maximum")


class GeoTiffConfig(_Config):
    delivery: Literal["direct", "tiles"] = "tiles"
    url: str | None = Field(default=None, pattern=COG_PATTERN, max_length=2048)
    cog_url: str | None = Field(default=None, alias="cogUrl", pattern=COG_PATTERN, max_length=2048)
    cog_url_template: str | None = Field(default=None, alias="cogUrlTemplate", max_length=2048)
    url_template: str | None = Field(default=None, alias="urlTemplate", max_length=2048)
    tile_server: str | None = Field(
        default=None, alias="tileServer", pattern=URL_PATTERN, max_length=2048
    )
    bounds: Bounds | None = None
    temporal: Temporal | None = None
    tile_params: dict[str, Any] | None = Field(default=None, alias="tileParams")
    processing: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _source(self) -> GeoTiffConfig:
        check_bounds(self.bounds)
        template = self.cog_url_template or self.url_template
        if not (self.url or self.cog_url or template):
            raise ValueError("a GeoTIFF layer needs 'url', 'cogUrl' or 'cogUrlTemplate'")
        if template is not None:
            if not re.match(COG_PATTERN, template):
                raise ValueError("the URL template must be an http(s), s3:// or storage:// URL")
            if not TEMPLATE_FIELDS.search(template):
                raise ValueError("the URL template has no date placeholder such as {YYYYMM}")
            if self.temporal is None or not self.temporal.enabled:
                raise ValueError("a URL template needs an enabled 'temporal' setting")
        if self.tile_params:
            try:
                parse_render_params(self.tile_params)
            except BadInput as exc:
                raise ValueError(f"tileParams: {exc.message}") from None
        return self


def _error_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ["source_config", *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]


def validate_source_config(
    source_type: SourceType, config: dict[str, Any], *, derived_stats: bool = True
) -> dict[str, Any]:
    """The normalised configuration, or `BadInput` naming the invalid keys. A vector
    layer's client keys are kept, the derived ones dropped; `derived_stats`: the empty
    statistics are added now (else when its features are first written)."""
    if source_type == SourceType.vector:
        kept = {k: v for k, v in config.items() if k not in DERIVED_VECTOR_KEYS}
        return kept | empty_vector_stats() if derived_stats else kept
    model = WmsConfig if source_type == SourceType.wms else GeoTiffConfig
    try:
        parsed = model.model_validate(config)
    except ValidationError as exc:
        detail = _error_detail(exc)
        fields = ", ".join(".".join(str(p) for p in d["loc"]) for d in detail)
        raise BadInput(
            f"Invalid {source_type.value} source_config: {fields}", detail=detail
        ) from None
    # The keys the client gave, normalised; the top-level defaults are the readers' (only a
    # GeoTIFF's delivery is stored).
    full: dict[str, Any] = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    declared = type(parsed).model_fields
    given = {(declared[n].alias or n) if n in declared else n for n in parsed.model_fields_set}
    if source_type == SourceType.geotiff:
        given.add("delivery")
    return {k: v for k, v in full.items() if k in given}


def empty_vector_stats() -> dict[str, Any]:
    return {
        "geometryType": None,
        "geometryTypes": [],
        "featureCount": 0,
        "bounds": None,
        "revision": 0,
    }
