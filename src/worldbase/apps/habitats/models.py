"""Habitats tables, as the seed's `Habitat` and `Species` models.

Differences from the seed's sketch, each for a reason:
- `geometry` is a real geometry column (PostGIS / WKB + R*Tree), not JSON;
- `raster_value` (not in the seed) is the habitat's class in the habitat raster, derived
  from `iucn_code` when not given ("1.4" -> 104, "14.1" -> 1401);
- a species' `occurrence_data` FeatureCollection is stored one feature per row in
  `species_occurrences` (indexed geometry), so bbox queries and location look-ups use the
  spatial index instead of parsing JSON;
- `habitat_types` is a text array on PostgreSQL and a JSON list on SQLite.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from worldbase.core.db import Base, TimestampMixin
from worldbase.geo.spatial import Geometry, spatial_index

# A list of strings on both backends: text[] on PostgreSQL, a JSON array on SQLite.
StringList = JSON().with_variant(ARRAY(String(50)), "postgresql")


class Habitat(TimestampMixin, Base):
    __tablename__ = "habitats"
    __table_args__ = (
        Index("idx_habitats_iucn_code", "iucn_code", unique=True),
        Index("idx_habitats_raster_value", "raster_value"),
        spatial_index("habitats", "geometry"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    iucn_code: Mapped[str] = mapped_column(String(50))
    description: Mapped[str | None] = mapped_column(Text)
    ecosystem_type: Mapped[str | None] = mapped_column(String(100))
    color_hex: Mapped[str] = mapped_column(String(7))
    raster_value: Mapped[int | None] = mapped_column(Integer)
    geometry: Mapped[BaseGeometry | None] = mapped_column(Geometry())
    # The tile URL template, relative to the server (`/habitats/{id}/tiles/{z}/{x}/{y}`);
    # responses make it absolute.
    tile_url: Mapped[str | None] = mapped_column(String(500))


class Species(TimestampMixin, Base):
    __tablename__ = "species"
    __table_args__ = (Index("idx_species_name", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    scientific_name: Mapped[str | None] = mapped_column(String(255))
    habitat_types: Mapped[list[str]] = mapped_column(StringList, default=list)


class SpeciesOccurrence(Base):
    """One feature of a species' `occurrence_data`: a sighting (point) or a range (polygon)."""

    __tablename__ = "species_occurrences"
    __table_args__ = (
        Index("idx_species_occurrences_species", "species_id", "position"),
        spatial_index("species_occurrences", "geometry"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    species_id: Mapped[int] = mapped_column(ForeignKey("species.id", ondelete="CASCADE"))
    # The feature's index in the FeatureCollection (the API returns features in this order).
    position: Mapped[int] = mapped_column(Integer)
    # Polygons and multipolygons are ranges (what location look-ups match); the rest sightings.
    is_range: Mapped[bool] = mapped_column(Boolean)
    geometry: Mapped[BaseGeometry] = mapped_column(Geometry())
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
