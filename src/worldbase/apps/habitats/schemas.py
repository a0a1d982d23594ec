"""Request and response schemas of the habitats app (habitats, species, look-ups, imports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic.config import JsonDict

from worldbase.apps.habitats import codes
from worldbase.core.errors import BadInput
from worldbase.core.schemas import InputSchema, Schema, UTCDateTime, examples

_AT = "2025-01-01T12:00:00Z"


def _as_value_error(check: Callable[[str], str]) -> Callable[[str], str]:
    # Pydantic reports ValueErrors as 422 field errors; domain errors would escape it.
    def validate(value: str) -> str:
        try:
            return check(value)
        except BadInput as exc:
            raise ValueError(exc.message) from None

    return validate


IucnCode = Annotated[
    str, Field(min_length=1, max_length=50), AfterValidator(_as_value_error(codes.normalize_code))
]
ColorHex = Annotated[
    str,
    Field(min_length=7, max_length=7, examples=["#2E7D32"]),
    AfterValidator(_as_value_error(codes.normalize_color)),
]
RasterValue = Annotated[int, Field(ge=0, le=codes.MAX_RASTER_VALUE)]
HabitatType = Annotated[str, Field(min_length=1, max_length=50)]

_POLYGON: JsonDict = {
    "type": "Polygon",
    "coordinates": [[[10.0, 50.0], [11.0, 50.0], [11.0, 51.0], [10.0, 51.0], [10.0, 50.0]]],
}

# --- Habitats --------------------------------------------------------------------------------

_HABITAT_EXAMPLE: JsonDict = {
    "id": 4,
    "name": "Temperate Forest",
    "iucn_code": "1.4",
    "description": "Broadleaf and mixed forests of the temperate zone",
    "ecosystem_type": "forest",
    "color_hex": "#2E7D32",
    "raster_value": 104,
    "geometry": None,
    "tile_url": "https://api.example.org/habitats/4/tiles/{z}/{x}/{y}",
    "created_at": _AT,
    "updated_at": _AT,
}


class HabitatCreate(InputSchema):
    name: str = Field(min_length=1, max_length=255)
    iucn_code: IucnCode
    description: str | None = Field(default=None, max_length=10_000)
    ecosystem_type: str | None = Field(default=None, max_length=100)
    color_hex: ColorHex | None = Field(
        default=None, description="#RRGGBB; the IUCN level-1 class's colour when not given"
    )
    raster_value: RasterValue | None = Field(
        default=None,
        description="Pixel value of this habitat in the habitat raster; derived from "
        "`iucn_code` when not given ('1.4' -> 104, '14.1' -> 1401)",
    )
    geometry: dict[str, Any] | None = Field(
        default=None,
        description="GeoJSON geometry (EPSG:4326); tiles draw it, over the raster class when "
        "the habitat has one too",
    )

    model_config = examples(
        {
            "name": "Temperate Forest",
            "iucn_code": "1.4",
            "description": "Broadleaf and mixed forests of the temperate zone",
            "ecosystem_type": "forest",
            "color_hex": "#2E7D32",
        },
        {
            "name": "Restored peatland",
            "iucn_code": "5.4.1",
            "ecosystem_type": "wetland",
            "color_hex": "#5B8DB8",
            "geometry": _POLYGON,
        },
        forbid=True,
    )


class HabitatUpdate(InputSchema):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    iucn_code: IucnCode | None = None
    description: str | None = Field(default=None, max_length=10_000)
    ecosystem_type: str | None = Field(default=None, max_length=100)
    color_hex: ColorHex | None = None
    raster_value: RasterValue | None = Field(
        default=None,
        description="Pixel value in the habitat raster; `null` clears the class (tiles then "
        "draw the geometry alone); left out, a new `iucn_code` re-derives it",
    )
    geometry: dict[str, Any] | None = None

    model_config = examples({"color_hex": "#1B5E20", "description": "Updated"}, forbid=True)


class HabitatRead(Schema):
    id: int
    name: str
    iucn_code: str
    description: str | None
    ecosystem_type: str | None
    color_hex: str
    raster_value: int | None
    geometry: dict[str, Any] | None = Field(description="GeoJSON geometry or null")
    tile_url: str | None = Field(description="XYZ tile URL template of this habitat")
    created_at: UTCDateTime
    updated_at: UTCDateTime

    model_config = examples(_HABITAT_EXAMPLE)


class HabitatPage(Schema):
    items: list[HabitatRead]
    total: int
    limit: int
    offset: int

    model_config = examples({"items": [_HABITAT_EXAMPLE], "total": 1, "limit": 100, "offset": 0})


# --- Species ---------------------------------------------------------------------------------

_OCCURRENCES: JsonDict = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [10.5, 50.5]},
            "properties": {"observed_at": "2024-05-01", "count": 2},
        },
        {"type": "Feature", "geometry": _POLYGON, "properties": {"kind": "range"}},
    ],
}
_SPECIES_EXAMPLE: JsonDict = {
    "id": 7,
    "name": "European Badger",
    "scientific_name": "Meles meles",
    "habitat_types": ["1.4", "4.4"],
    "occurrence_count": 2,
    "occurrences_url": "https://api.example.org/species/7/occurrences",
    "created_at": _AT,
    "updated_at": _AT,
}


class SpeciesCreate(InputSchema):
    name: str = Field(min_length=1, max_length=255)
    scientific_name: str | None = Field(default=None, max_length=255)
    habitat_types: list[HabitatType] = Field(default_factory=list, max_length=100)
    occurrence_data: dict[str, Any] | None = Field(
        default=None,
        description="GeoJSON FeatureCollection: points for sightings, polygons for ranges",
    )

    model_config = examples(
        {
            "name": "European Badger",
            "scientific_name": "Meles meles",
            "habitat_types": ["1.4", "4.4"],
            "occurrence_data": _OCCURRENCES,
        },
        forbid=True,
    )


class SpeciesUpdate(InputSchema):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    scientific_name: str | None = Field(default=None, max_length=255)
    habitat_types: list[HabitatType] | None = Field(default=None, max_length=100)
    occurrence_data: dict[str, Any] | None = Field(
        default=None, description="Replaces every occurrence feature when given"
    )

    model_config = examples({"habitat_types": ["1.4"], "occurrence_data": _OCCURRENCES})


class SpeciesRead(Schema):
    id: int
    name: str
    scientific_name: str | None
    habitat_types: list[str]
    occurrence_count: int
    occurrences_url: str
    occurrence_data: dict[str, Any] | None = Field(
        default=None,
        description="With `?include=occurrence_data`: the FeatureCollection (first "
        "10,000 features; `numberMatched` says how many there are)",
    )
    created_at: UTCDateTime
    updated_at: UTCDateTime

    model_config = examples(_SPECIES_EXAMPLE)


class SpeciesPage(Schema):
    items: list[SpeciesRead]
    total: int
    limit: int
    offset: int

    model_config = examples({"items": [_SPECIES_EXAMPLE], "total": 1, "limit": 100, "offset": 0})


class OccurrencePage(Schema):
    """A GeoJSON FeatureCollection with OGC API-style paging members."""

    type: str = "FeatureCollection"
    features: list[dict[str, Any]]
    numberMatched: int
    numberReturned: int
    links: list[dict[str, str]]

    model_config = examples(
        {
            **_OCCURRENCES,
            "numberMatched": 2,
            "numberReturned": 2,
            "links": [
                {
                    "rel": "self",
                    "href": "https://api.example.org/species/7/occurrences?bbox=10,50,11,51",
                    "type": "application/geo+json",
                }
            ],
        }
    )


# --- Look-ups and imports --------------------------------------------------------------------


class LocationInfoRead(Schema):
    habitats: list[int] = Field(description="Habitat codes (raster values) within the radius")
    species: list[str] = Field(description="Scientific names of species whose ranges are near")

    model_config = examples({"habitats": [104, 405, 1401], "species": ["Meles meles"]})


class ImportRead(Schema):
    kind: str = Field(description="habitats or species")
    created: int
    features: int = Field(default=0, description="Occurrence features written (species)")

    model_config = examples({"kind": "habitats", "created": 12, "features": 0})
