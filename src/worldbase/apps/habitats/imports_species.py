"""Species imports: CSV, GeoJSON, GeoPackage or zipped Shapefile (see `imports` for the
columns and the all-or-nothing rules)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.habitats import service_species
from worldbase.apps.habitats.exceptions import DuplicateSpecies
from worldbase.apps.habitats.imports import (
    Errors,
    ImportReport,
    Progress,
    all_or_nothing,
    check_size,
    csv_rows,
    no_progress,
    parse_geometry_text,
    required,
)
from worldbase.apps.habitats.models import Species
from worldbase.apps.habitats.service_species import Occurrence
from worldbase.core.errors import BadInput
from worldbase.geo.vector_io import read_features

_SQLITE_MAGIC = b"SQLite format 3\x00"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass
class SpeciesRow:
    name: str
    where: str
    scientific_name: str | None = None
    habitat_types: list[str] = field(default_factory=list)
    occurrences: list[Occurrence] = field(default_factory=list)


def _habitat_types(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        text = str(value).strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                raise BadInput("habitat_types is not a valid JSON list") from None
            if not isinstance(parsed, list):
                raise BadInput("habitat_types must be a list")
            items = [str(v).strip() for v in parsed]
        else:
            items = [p.strip() for p in text.replace("|", ";").split(";")]
    items = [i for i in items if i]
    if len(items) > 100 or any(len(i) > 50 for i in items):
        raise BadInput("habitat_types takes at most 100 entries of at most 50 characters")
    return items


def _text(value: Any, column: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if len(text) > 255:
        raise BadInput(f"{column} is longer than 255 characters")
    return text or None


def _add(
    species: dict[str, SpeciesRow],
    *,
    name: str | None,
    where: str,
    scientific_name: Any,
    habitat_types: Any,
    geometry: BaseGeometry | None,
    properties: dict[str, Any],
) -> None:
    if not name:
        raise BadInput("no species name (column name)")
    row = species.get(name)
    if row is None:
        row = species[name] = SpeciesRow(name, where)
    row.scientific_name = row.scientific_name or _text(scientific_name, "scientific_name")
    for item in _habitat_types(habitat_types):
        if item not in row.habitat_types:
            row.habitat_types.append(item)
    if geometry is not None:
        row.occurrences.append(Occurrence(geometry, properties))


def _sniff_csv(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(128)
    if head.startswith(_SQLITE_MAGIC) or head[:4] in _ZIP_MAGIC:
        return False
    return not head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{")


def read_species_file(path: Path, *, filename: str) -> list[SpeciesRow]:
    """Species with their features from CSV, GeoJSON, GeoPackage or zipped Shapefile."""
    check_size(path, filename)
    errors = Errors(filename)
    species: dict[str, SpeciesRow] = {}
    if _sniff_csv(path):
        names, rows = csv_rows(path, filename)
        required(names, ("name",), filename)
        for line, row in rows:
            where = f"line {line}"
            if len(row) != len(names):
                errors.add(where, f"{len(row)} values for {len(names)} columns", line=line)
                continue
            cells = {n: row[i].strip() for i, n in enumerate(names)}
            try:
                geometry = parse_geometry_text(cells["geometry"]) if cells.get("geometry") else None
                reserved = ("name", "scientific_name", "habitat_types", "geometry")
                properties = {k: v for k, v in cells.items() if k not in reserved and v != ""}
                _add(
                    species,
                    name=_text(cells.get("name"), "name"),
                    where=where,
                    scientific_name=cells.get("scientific_name"),
                    habitat_types=cells.get("habitat_types"),
                    geometry=geometry,
                    properties=properties,
                )
            except BadInput as exc:
                errors.add(where, exc.message, line=line)
    else:
        for feature in read_features(path, filename=filename):
            where = f"feature {feature.index + 1}"
            props = dict(feature.properties)
            try:
                name = _text(_pop_first(props, "name", "species", "common_name"), "name")
                scientific = _pop_first(props, "scientific_name", "sci_name", "binomial")
                _add(
                    species,
                    name=name or _text(scientific, "name"),
                    where=where,
                    scientific_name=scientific,
                    habitat_types=props.pop("habitat_types", None),
                    geometry=feature.geometry,
                    properties=props,
                )
            except BadInput as exc:
                errors.add(where, exc.message, feature=feature.index + 1)
    errors.raise_if_any()
    if not species:
        raise BadInput(f"{filename}: no species")
    return list(species.values())


def _pop_first(props: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        for candidate in (key, key.upper()):
            if props.get(candidate) not in (None, ""):
                return props.pop(candidate)
    return None


async def import_species(
    session: AsyncSession, *, path: Path, filename: str, progress: Progress = no_progress
) -> ImportReport:
    await progress(0.0, f"reading {filename}")
    rows = read_species_file(path, filename=filename)
    await progress(0.4, f"writing {len(rows)} species")
    existing = set(
        await session.scalars(select(Species.name).where(Species.name.in_([r.name for r in rows])))
    )
    if existing:
        errors = Errors(filename)
        for row in rows:
            if row.name in existing:
                errors.add(row.where, f"a species named {row.name!r} already exists")
        errors.raise_if_any(DuplicateSpecies)
    features = 0
    async with all_or_nothing(session):
        for i, row in enumerate(rows):
            values = {
                "name": row.name,
                "scientific_name": row.scientific_name,
                "habitat_types": row.habitat_types,
            }
            species, _ = await service_species.create(session, values=values, commit=False)
            if row.occurrences:
                features += await service_species.insert_occurrences(
                    session, species_id=species.id, occurrences=row.occurrences
                )
            if i % 100 == 99:
                await progress(0.4 + 0.6 * i / len(rows), f"writing {len(rows)} species")
    await progress(1.0, f"imported {len(rows)} species, {features} features")
    return ImportReport("species", len(rows), features)
