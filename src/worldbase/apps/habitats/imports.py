"""Imports: habitats from CSV (here) and species with their ranges and sightings from CSV,
GeoJSON, GeoPackage or zipped Shapefile (`imports_species`). All or nothing per file.

Every row is validated before anything is written; bad rows are reported together (up to
`MAX_REPORTED`), each with its line (CSV) or feature number, in `detail.errors`. Then one
transaction writes everything, or nothing when a code or name already exists (409).

Habitat CSV columns: `name`, `iucn_code` (required), `description`, `ecosystem_type`,
`color_hex`, `raster_value`, `geometry` (WKT or GeoJSON). Species CSV columns: `name`
(required), `scientific_name`, `habitat_types` (separated by `;` or `|`, or a JSON list),
`geometry` (WKT or GeoJSON, optional); rows with the same name add features to one species,
other columns become the feature's properties. GeoJSON, GeoPackage and Shapefile features
name their species by `name` (or `species`), their scientific name by `scientific_name`,
`sci_name` or `binomial` (the IUCN Red List range files' columns).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.habitats import codes, service
from worldbase.apps.habitats.exceptions import DuplicateHabitat
from worldbase.apps.habitats.models import Habitat
from worldbase.core.errors import BadInput, DomainError, PayloadTooLarge
from worldbase.geo.geometry import parse_geojson_geometry
from worldbase.geo.vector_io import MAX_IMPORT_BYTES

MAX_REPORTED = 50
HABITAT_COLUMNS = (
    "name",
    "iucn_code",
    "description",
    "ecosystem_type",
    "color_hex",
    "raster_value",
    "geometry",
)
# Columns of an exported habitat list, accepted and ignored on import.
IGNORED_COLUMNS = ("id", "tile_url", "created_at", "updated_at")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

Progress = Callable[[float, str], Awaitable[None]]


async def no_progress(fraction: float, message: str) -> None:
    return None


@asynccontextmanager
async def all_or_nothing(session: AsyncSession) -> AsyncIterator[None]:
    """Commits what the block wrote, or rolls all of it back when the block raises."""
    try:
        yield
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


@dataclass
class ImportReport:
    kind: str
    created: int
    features: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "created": self.created, "features": self.features}


class Errors:
    """Bad rows, collected so one failed import names all of them (up to a limit)."""

    def __init__(self, filename: str):
        self.filename = filename
        self.items: list[dict[str, Any]] = []
        self.count = 0

    def add(self, where: str, message: str, **detail: Any) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED:
            self.items.append({"at": where, "message": message, **detail})

    def raise_if_any(self, error: type[DomainError] = BadInput) -> None:
        if not self.items:
            return
        first = self.items[0]
        more = f" (and {self.count - 1} more)" if self.count > 1 else ""
        raise error(
            f"{self.filename}, {first['at']}: {first['message']}{more}; nothing was imported",
            detail={"errors": self.items, "count": self.count},
        )


def check_size(path: Path, filename: str) -> None:
    size = path.stat().st_size
    if size > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(
            f"{filename} is {size} bytes; imports take at most {MAX_IMPORT_BYTES} bytes",
            detail={"limit": MAX_IMPORT_BYTES, "size": size},
        )
    if size == 0:
        raise BadInput(f"{filename} is empty")


def csv_rows(path: Path, filename: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(f"{filename}: not a UTF-8 CSV file") from None
    try:
        dialect: Any = csv.Sniffer().sniff(content[:65536], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(content, newline=""), dialect)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise BadInput(f"{filename}: unreadable CSV: {exc}") from None
    if not header or not any(h.strip() for h in header):
        raise BadInput(f"{filename}: the CSV file has no header row")
    names = [h.strip().lower() for h in header]

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield reader.line_num, row
        except csv.Error as exc:
            raise BadInput(f"{filename}, line {reader.line_num}: unreadable CSV: {exc}") from None

    return names, rows()


def parse_geometry_text(text: str) -> BaseGeometry:
    """A validated geometry from WKT or a GeoJSON geometry object (`BadInput` otherwise)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            raise BadInput("geometry is not valid JSON") from None
        return parse_geojson_geometry(obj, max_vertices=service.MAX_GEOMETRY_VERTICES)
    try:
        geom = shapely.from_wkt(text)
    except (shapely.errors.GEOSException, ValueError):
        raise BadInput("geometry is neither WKT nor GeoJSON") from None
    if geom is None or geom.is_empty:
        raise BadInput("geometry is empty")
    # Through the GeoJSON validator: coordinate ranges, validity, winding, vertex budget.
    return parse_geojson_geometry(mapping(geom), max_vertices=service.MAX_GEOMETRY_VERTICES)


def required(names: list[str], wanted: Iterable[str], filename: str) -> None:
    missing = [n for n in wanted if n not in names]
    if missing:
        raise BadInput(
            f"{filename}: missing column(s) {', '.join(missing)}",
            detail={"missing": missing, "columns": names},
        )


# --- Habitats --------------------------------------------------------------------------------


def read_habitats_csv(path: Path, *, filename: str) -> list[dict[str, Any]]:
    """Validated column values of every row (`BadInput` naming each bad line)."""
    check_size(path, filename)
    names, rows = csv_rows(path, filename)
    required(names, ("name", "iucn_code"), filename)
    unknown = [n for n in names if n not in HABITAT_COLUMNS and n not in IGNORED_COLUMNS]
    if unknown:
        raise BadInput(
            f"{filename}: unknown column(s) {', '.join(unknown)}",
            detail={"unknown": unknown, "known": list(HABITAT_COLUMNS)},
        )
    errors = Errors(filename)
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        where = f"line {line}"
        if len(row) != len(names):
            errors.add(where, f"{len(row)} values for {len(names)} columns", line=line)
            continue
        cells = {n: row[i].strip() for i, n in enumerate(names) if n in HABITAT_COLUMNS}
        try:
            values = _habitat_values(cells)
        except BadInput as exc:
            errors.add(where, exc.message, line=line)
            continue
        code = values["iucn_code"]
        if code in seen:
            errors.add(where, f"iucn_code {code!r} repeats line {seen[code]}", line=line)
            continue
        seen[code] = line
        values["_line"] = line
        out.append(values)
    errors.raise_if_any()
    if not out:
        raise BadInput(f"{filename}: no rows")
    return out


def _habitat_values(cells: dict[str, str]) -> dict[str, Any]:
    name = cells.get("name", "")
    if not name or len(name) > 255:
        raise BadInput("name must have 1 to 255 characters")
    values: dict[str, Any] = {"name": name, "iucn_code": codes.normalize_code(cells["iucn_code"])}
    for column, limit in (("description", 10_000), ("ecosystem_type", 100)):
        text = cells.get(column) or None
        if text is not None and len(text) > limit:
            raise BadInput(f"{column} is longer than {limit} characters")
        values[column] = text
    if cells.get("color_hex"):
        values["color_hex"] = codes.normalize_color(cells["color_hex"])
    if cells.get("raster_value"):
        try:
            raster_value = int(cells["raster_value"])
        except ValueError:
            raise BadInput("raster_value must be an integer") from None
        if not 0 <= raster_value <= codes.MAX_RASTER_VALUE:
            raise BadInput(f"raster_value must be 0 to {codes.MAX_RASTER_VALUE}")
        values["raster_value"] = raster_value
    if cells.get("geometry"):
        values["geometry"] = parse_geometry_text(cells["geometry"])
    return values


async def import_habitats(
    session: AsyncSession, *, path: Path, filename: str, progress: Progress = no_progress
) -> ImportReport:
    await progress(0.0, f"reading {filename}")
    rows = read_habitats_csv(path, filename=filename)
    await progress(0.5, f"writing {len(rows)} habitats")
    existing = set(
        await session.scalars(
            select(Habitat.iucn_code).where(Habitat.iucn_code.in_([r["iucn_code"] for r in rows]))
        )
    )
    if existing:
        errors = Errors(filename)
        for row in rows:
            if row["iucn_code"] in existing:
                errors.add(
                    f"line {row['_line']}",
                    f"a habitat with iucn_code {row['iucn_code']!r} already exists",
                    line=row["_line"],
                )
        errors.raise_if_any(DuplicateHabitat)
    async with all_or_nothing(session):
        for i, row in enumerate(rows):
            row.pop("_line")
            await service.create(session, values=row, commit=False)
            if i % 500 == 499:
                await progress(0.5 + 0.5 * i / len(rows), f"writing {len(rows)} habitats")
    await progress(1.0, f"imported {len(rows)} habitats")
    return ImportReport("habitats", len(rows))
