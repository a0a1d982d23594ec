"""What every vector-file reader shares: the feature type, the size limit, the per-feature
vertex cap, reprojection to EPSG:4326 and the geometry check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from worldbase.core.errors import BadInput
from worldbase.geo.geometry import DEFAULT_MAX_VERTICES, parse_geojson_geometry, to_geojson

MAX_IMPORT_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportedFeature:
    index: int
    geometry: BaseGeometry
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FeatureCap:
    """Positions one feature may have, and the setting behind that limit (for the 422)."""

    max_vertices: int = DEFAULT_MAX_VERTICES
    limit_name: str = ""


def bad_input(message: str, reason: str, **detail: Any) -> BadInput:
    return BadInput(message, detail={"reason": reason, **detail})


# --- CRS -------------------------------------------------------------------------------------


def transformer_to_wgs84(crs: Any, filename: str) -> Transformer | None:
    """A transformer to EPSG:4326 (lon, lat), or None when the source already is lon/lat."""
    if crs is None or crs == "":
        return None
    try:
        source = CRS.from_user_input(crs)
    except Exception:  # pyproj raises CRSError and others for unreadable definitions
        raise bad_input(f"{filename}: unknown coordinate reference system {crs!r}", "crs") from None
    target = CRS.from_epsg(4326)
    if source.equals(target, ignore_axis_order=True) or source.to_epsg() == 4326:
        return None
    datum, wgs84 = source.datum, target.datum
    if source.is_geographic and datum and wgs84 and datum.name == wgs84.name:
        return None  # CRS84 and the like: the same lon/lat
    return Transformer.from_crs(source, target, always_xy=True)


def reproject(geoms: np.ndarray, transformer: Transformer | None) -> np.ndarray:
    if transformer is None:
        return geoms

    def apply(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack((x, y))

    return shapely.transform(geoms, apply)


def validated(
    geom: BaseGeometry | None, where: str, filename: str, cap: FeatureCap, **detail: Any
) -> BaseGeometry:
    if geom is None or geom.is_empty:
        raise bad_input(
            f"{filename}, {where}: the feature has no geometry", "no geometry", **detail
        )
    count = int(shapely.get_num_coordinates(geom))
    if count > cap.max_vertices:
        # Counted on the shapely geometry: a huge one is refused before it is re-encoded.
        named = f" ({cap.limit_name})" if cap.limit_name else ""
        raise bad_input(
            f"{filename}, {where}: more than {cap.max_vertices} positions{named}",
            "too many positions",
            limit=cap.max_vertices,
            setting=cap.limit_name or None,
            **detail,
        )
    try:
        return parse_geojson_geometry(
            to_geojson(geom), max_vertices=cap.max_vertices, limit_name=cap.limit_name
        )
    except BadInput as exc:
        raise bad_input(
            f"{filename}, {where}: {exc.message}", "invalid geometry", **detail
        ) from None


# --- GeoJSON ---------------------------------------------------------------------------------
