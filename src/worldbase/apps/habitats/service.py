"""Habitats: get, list, create, update, delete; the class colour map of the habitat raster.

`raster_value` follows `iucn_code` unless given explicitly (`null` on update clears it); a
habitat with both a raster class and a geometry is drawn from both. The tile URL template is stored
relative (`/habitats/{id}/tiles/{z}/{x}/{y}`) and made absolute by the routes.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.habitats import codes
from worldbase.apps.habitats.exceptions import DuplicateHabitat, HabitatNotFound
from worldbase.apps.habitats.models import Habitat
from worldbase.geo.geometry import parse_geojson_geometry, to_geojson

MAX_GEOMETRY_VERTICES = 200_000


def tile_template(habitat_id: int) -> str:
    return f"/habitats/{habitat_id}/tiles/{{z}}/{{x}}/{{y}}"


def text_search(text_: str, *columns: Any) -> Any:
    """Any of `columns` contains `text_` (case-insensitive; `%`, `_` and `\\` are literal)."""
    escaped = text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped.lower()}%"
    return or_(*(func.lower(column).like(pattern, escape="\\") for column in columns))


def as_dict(habitat: Habitat, *, base_url: str = "") -> dict[str, Any]:
    return {
        "id": habitat.id,
        "name": habitat.name,
        "iucn_code": habitat.iucn_code,
        "description": habitat.description,
        "ecosystem_type": habitat.ecosystem_type,
        "color_hex": habitat.color_hex,
        "raster_value": habitat.raster_value,
        "geometry": None if habitat.geometry is None else to_geojson(habitat.geometry),
        "tile_url": base_url.rstrip("/") + (habitat.tile_url or tile_template(habitat.id)),
        "created_at": habitat.created_at,
        "updated_at": habitat.updated_at,
    }


async def get_or_raise(session: AsyncSession, *, habitat_id: int) -> Habitat:
    habitat = await session.get(Habitat, habitat_id)
    if habitat is None:
        raise HabitatNotFound()
    return habitat


async def list(
    session: AsyncSession,
    *,
    q: str | None = None,
    ecosystem_type: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[builtins.list[Habitat], int]:
    filters = []
    if ecosystem_type:
        filters.append(func.lower(Habitat.ecosystem_type) == ecosystem_type.lower())
    if q:
        filters.append(
            text_search(q, Habitat.name, Habitat.iucn_code, func.coalesce(Habitat.description, ""))
        )
    total = await session.scalar(select(func.count()).select_from(Habitat).where(*filters))
    rows = await session.scalars(
        select(Habitat).where(*filters).order_by(Habitat.iucn_code).limit(limit).offset(offset)
    )
    return [*rows], int(total or 0)


def parse_geometry(value: Any, *, path: str = "geometry") -> BaseGeometry | None:
    if value is None:
        return None
    return parse_geojson_geometry(value, max_vertices=MAX_GEOMETRY_VERTICES, path=path)


def prepare(values: dict[str, Any], *, current: Habitat | None = None) -> dict[str, Any]:
    """Column values from validated input: geometry parsed, colour and raster class filled."""
    out = dict(values)
    if "geometry" in out and not isinstance(out["geometry"], BaseGeometry | None):
        out["geometry"] = parse_geometry(out["geometry"])
    code = out.get("iucn_code") or (current.iucn_code if current else None)
    if code is None:
        return out
    code = codes.normalize_code(code)
    if "iucn_code" in out:
        out["iucn_code"] = code
    code_changed = current is None or code != current.iucn_code
    # On update an explicit `raster_value: null` clears the class (the habitat is then drawn
    # from its geometry alone); a new code without `raster_value` re-derives it. On create a
    # missing or null value is derived from the code.
    cleared = current is not None and "raster_value" in out and out["raster_value"] is None
    if not cleared and out.get("raster_value") is None and ("raster_value" in out or code_changed):
        out["raster_value"] = codes.raster_value_of(code)
    if current is None and not out.get("color_hex"):
        out["color_hex"] = codes.default_color(code)
    elif "color_hex" in out:
        if out["color_hex"] is None:
            out.pop("color_hex")
        else:
            out["color_hex"] = codes.normalize_color(out["color_hex"])
    return out


async def _check_code_free(session: AsyncSession, code: str, *, except_id: int | None) -> None:
    query = select(Habitat.id).where(Habitat.iucn_code == code)
    if except_id is not None:
        query = query.where(Habitat.id != except_id)
    if await session.scalar(query) is not None:
        raise DuplicateHabitat(
            f"A habitat with iucn_code {code!r} already exists",
            detail={"reason": "duplicate iucn_code", "iucn_code": code},
        )


async def create(session: AsyncSession, *, values: dict[str, Any], commit: bool = True) -> Habitat:
    data = prepare(values)
    await _check_code_free(session, data["iucn_code"], except_id=None)
    habitat = Habitat(**data)
    session.add(habitat)
    try:
        await session.flush()
        habitat.tile_url = tile_template(habitat.id)
        if commit:
            await session.commit()
    except IntegrityError as exc:  # a concurrent create with the same code
        await session.rollback()
        raise DuplicateHabitat(
            f"A habitat with iucn_code {data['iucn_code']!r} already exists"
        ) from exc
    return habitat


async def update(session: AsyncSession, *, habitat: Habitat, values: dict[str, Any]) -> Habitat:
    data = prepare(values, current=habitat)
    if "iucn_code" in data:
        await _check_code_free(session, data["iucn_code"], except_id=habitat.id)
    for key, value in data.items():
        setattr(habitat, key, value)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise DuplicateHabitat("A habitat with this iucn_code already exists") from exc
    await session.refresh(habitat)
    return habitat


async def delete(session: AsyncSession, *, habitat: Habitat) -> None:
    await session.delete(habitat)
    await session.commit()


# --- What tiles depend on --------------------------------------------------------------------


@dataclass(frozen=True)
class TileHabitat:
    """The columns a habitat's tiles depend on (one small query, no geometry unless needed)."""

    id: int
    color_hex: str
    raster_value: int | None
    has_geometry: bool
    updated_at: datetime

    @property
    def version(self) -> str:
        return f"{self.color_hex}:{self.raster_value}:{self.updated_at.timestamp():.6f}"


def _tile_habitats() -> Select[int, str, int | None, bool, datetime]:
    """The columns of `TileHabitat`, in its order."""
    return select(
        Habitat.id,
        Habitat.color_hex,
        Habitat.raster_value,
        Habitat.geometry.is_not(None),
        Habitat.updated_at,
    )


async def tile_habitat(session: AsyncSession, *, habitat_id: int) -> TileHabitat:
    row = (await session.execute(_tile_habitats().where(Habitat.id == habitat_id))).first()
    if row is None:
        raise HabitatNotFound()
    return TileHabitat(*row)


async def tile_habitats(session: AsyncSession) -> builtins.list[TileHabitat]:
    """Every habitat, for the all-habitats tiles (their colour map and version)."""
    rows = await session.execute(_tile_habitats().order_by(Habitat.id))
    return [TileHabitat(*row) for row in rows]
