"""GeoJSON schemas of vector features (documentation; the routes build the JSON directly)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict
from pydantic.config import JsonDict

from worldbase.core.schemas import Schema

FEATURE_EXAMPLE: JsonDict = {
    "type": "Feature",
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[2.5, 54.5], [3.5, 54.5], [3.5, 55.5], [2.5, 55.5], [2.5, 54.5]]],
    },
    "properties": {"name": "Dogger Bank", "protection_level": "no-take"},
}
FEATURE_COLLECTION_EXAMPLE: JsonDict = {"type": "FeatureCollection", "features": [FEATURE_EXAMPLE]}
_READ_EXAMPLE: JsonDict = {
    **FEATURE_EXAMPLE,
    "id": "6f1c2a5e-3b7d-4e8f-9a0b-1c2d3e4f5a6b",
    "display_order": 0,
}


class FeatureRead(Schema):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: dict[str, Any]
    display_order: int

    model_config = ConfigDict(json_schema_extra={"examples": [_READ_EXAMPLE]})


class Link(Schema):
    rel: str
    href: str
    type: str | None = None


class FeatureCollectionRead(Schema):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[FeatureRead]
    numberMatched: int | None = None
    numberReturned: int
    links: list[Link] = []

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "FeatureCollection",
                    "features": [_READ_EXAMPLE],
                    "numberMatched": 2,
                    "numberReturned": 1,
                    "links": [
                        {
                            "rel": "next",
                            "href": "/api/layers/6f1c2a5e/features?limit=1&offset=1",
                            "type": "application/geo+json",
                        }
                    ],
                }
            ]
        }
    )


class ImportQueued(Schema):
    job_id: str
    status: str
    status_url: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "6f1c2a5e-3b7d-4e8f-9a0b-1c2d3e4f5a6b",
                    "status": "queued",
                    "status_url": "/api/jobs/6f1c2a5e-3b7d-4e8f-9a0b-1c2d3e4f5a6b",
                }
            ]
        }
    )
