"""Species: get, list, create, update, delete, and their occurrence features.

A species' `occurrence_data` FeatureCollection is stored one feature per row in
`species_occurrences` (indexed geometry, properties, its position in the collection).
Polygons are ranges (location look-ups match them); other geometries are sightings.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import String, func, select, type_coerce
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.habitats.exceptions import DuplicateSpecies, SpeciesNotFound
from worldbase.apps.habitats.models import Species, SpeciesOccurrence
from worldbase.apps.habitats.service import text_search
from worldbase.geo.bulk_insert import bulk_insert_features
from worldbase.geo.geometry import parse_feature_collection, to_geojson
from worldbase.geo.spatial import bbox_filter, intersects

MAX_OCCURRENCE_FEATURES = 100_000
MAX_OCCURRENCE_VERTICES = 2_000_000


@dataclass(frozen=True)
class Occurrence:
    geometry: BaseGeometry
    properties: dict[str, Any]


def is_range(geometry: BaseGeometry) -> bool:
    return isinstance(geometry, Polygon | MultiPolygon)


def parse_occurrences(data: Any) -> builtins.list[Occurrence]:
    """The features of a GeoJSON FeatureCollection, validated (`BadInput` names the feature)."""
    parsed = parse_feature_collection(
        data, max_vertices=MAX_OCCURRENCE_VERTICES, max_features=MAX_OCCURRENCE_FEATURES
    )
    out = []
    for feature in parsed:
        assert feature.geometry is not None
        properties = dict(feature.properties)
        if feature.id is not None:
            properties.setdefault("id", feature.id)
        out.append(Occurrence(feature.geometry, properties))
    return out


def as_dict(species: Species, *, count: int, base_url: str = "") -> dict[str, Any]:
    return {
        "id": species.id,
        "name": species.name,
        "scientific_name": species.scientific_name,
        "habitat_types": builtins.list(species.habitat_types or []),
        "occurrence_count": count,
        "occurrences_url": f"{base_url.rstrip('/')}/species/{species.id}/occurrences",
        "created_at": species.created_at,
        "updated_at": species.updated_at,
    }


async def get_or_raise(session: AsyncSession, *, species_id: int) -> Species:
    species = await session.get(Species, species_id)
    if species is None:
        raise SpeciesNotFound()
    return species


async def occurrence_counts(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await session.execute(
        select(SpeciesOccurrence.species_id, func.count())
        .where(SpeciesOccurrence.species_id.in_(ids))
        .group_by(SpeciesOccurrence.species_id)
    )
    return {int(species_id): int(count) for species_id, count in rows}


async def list(
    session: AsyncSession,
    *,
    q: str | None = None,
    habitat_type: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[builtins.list[Species], int]:
    filters = []
    if q:
        filters.append(text_search(q, Species.name, func.coalesce(Species.scientific_name, "")))
    query = select(Species).where(*filters).order_by(Species.name)
    if habitat_type:
        # Filtered in Python over the page candidates would break paging: done in SQL instead.
        if session.get_bind().dialect.name == "postgresql":
            array = type_coerce(Species.habitat_types, ARRAY(String(50)))
            query = query.where(array.contains([habitat_type]))
        else:
            each = func.json_each(Species.habitat_types).table_valued("value")
            query = query.where(select(each.c.value).where(each.c.value == habitat_type).exists())
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.limit(limit).offset(offset))
    return [*rows], int(total or 0)


async def _check_name_free(session: AsyncSession, name: str, *, except_id: int | None) -> None:
    query = select(Species.id).where(Species.name == name)
    if except_id is not None:
        query = query.where(Species.id != except_id)
    if await session.scalar(query) is not None:
        raise DuplicateSpecies(
            f"A species named {name!r} already exists",
            detail={"reason": "duplicate name", "name": name},
        )


async def insert_occurrences(
    session: AsyncSession, *, species_id: int, occurrences: Iterable[Occurrence], start: int = 0
) -> int:
    rows = (
        {
            "species_id": species_id,
            "position": start + i,
            "is_range": is_range(o.geometry),
            "geometry": o.geometry,
            "properties": o.properties,
        }
        for i, o in enumerate(occurrences)
    )
    return await bulk_insert_features(session, SpeciesOccurrence.__table__, rows)  # type: ignore[arg-type]


def _values(values: dict[str, Any]) -> tuple[dict[str, Any], builtins.list[Occurrence] | None]:
    data = dict(values)
    occurrences = None
    if "occurrence_data" in data:
        raw = data.pop("occurrence_data")
        occurrences = [] if raw is None else parse_occurrences(raw)
    if data.get("habitat_types") is None and "habitat_types" in data:
        data["habitat_types"] = []
    return data, occurrences


async def create(
    session: AsyncSession, *, values: dict[str, Any], commit: bool = True
) -> tuple[Species, int]:
    """The new species and its number of occurrence features."""
    data, occurrences = _values(values)
    await _check_name_free(session, data["name"], except_id=None)
    species = Species(**data)
    session.add(species)
    try:
        await session.flush()
        count = 0
        if occurrences:
            count = await insert_occurrences(
                session, species_id=species.id, occurrences=occurrences
            )
        if commit:
            await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise DuplicateSpecies(f"A species named {data['name']!r} already exists") from exc
    return species, count


async def update(
    session: AsyncSession, *, species: Species, values: dict[str, Any]
) -> tuple[Species, int]:
    data, occurrences = _values(values)
    if "name" in data:
        await _check_name_free(session, data["name"], except_id=species.id)
    for key, value in data.items():
        setattr(species, key, value)
    try:
        await session.flush()
        if occurrences is not None:
            await session.execute(
                sql_delete(SpeciesOccurrence).where(SpeciesOccurrence.species_id == species.id)
            )
            if occurrences:
                await insert_occurrences(session, species_id=species.id, occurrences=occurrences)
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise DuplicateSpecies("A species with this name already exists") from exc
    await session.refresh(species)
    counts = await occurrence_counts(session, ids=[species.id])
    return species, counts.get(species.id, 0)


async def delete(session: AsyncSession, *, species: Species) -> None:
    await session.execute(
        sql_delete(SpeciesOccurrence).where(SpeciesOccurrence.species_id == species.id)
    )
    await session.delete(species)
    await session.commit()


async def list_occurrences(
    session: AsyncSession,
    *,
    species_id: int,
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    offset: int,
) -> tuple[builtins.list[dict[str, Any]], int]:
    """GeoJSON features of the species (inside `bbox` when given), in collection order."""
    filters = [SpeciesOccurrence.species_id == species_id]
    if bbox is not None:
        minx, miny, maxx, maxy = bbox
        if minx < maxx and miny < maxy:  # exact: features that intersect the box
            filters.append(intersects(SpeciesOccurrence.geometry, box(*bbox)))
        else:  # a degenerate box (a line or a point)
            filters.append(bbox_filter(SpeciesOccurrence.geometry, *bbox))
    total = await session.scalar(
        select(func.count()).select_from(SpeciesOccurrence).where(*filters)
    )
    rows = await session.execute(
        select(
            SpeciesOccurrence.id,
            SpeciesOccurrence.geometry,
            SpeciesOccurrence.properties,
        )
        .where(*filters)
        .order_by(SpeciesOccurrence.position)
        .limit(limit)
        .offset(offset)
    )
    features = [
        {"type": "Feature", "id": id_, "geometry": to_geojson(geom), "properties": props or {}}
        for id_, geom, props in rows
    ]
    return features, int(total or 0)
