"""The lon/lat region within a geodesic distance of a geometry, built once in Python.

`within_distance` intersects the stored geometries with this region on both backends, so
PostGIS and SQLite answer identically and the distance is right at any latitude.

- Point: vertices at exactly `metres` along `POINT_SEGMENTS` azimuths on the WGS84
  ellipsoid (`pyproj.Geod`, Karney's algorithm). The polygon is inscribed in the true
  circle; its chords fall short by at most 1 - cos(pi / POINT_SEGMENTS) = 0.004 % of the
  radius (a little more at very high latitudes where lon/lat chords bend).
- Other geometries: buffered in an azimuthal-equidistant projection centred on the
  geometry (distances from the centre exact, elsewhere off by about (rho/R)^2 / 6 for a
  vertex rho from the centre): < 0.1 % of the radius while the geometry plus the radius
  stays within ~490 km of its centre, growing quadratically beyond.
- Antimeridian: the region is built with continuous longitudes and then split at +-180
  into a MultiPolygon, so a circle around (179.99, 0) finds points at -179.99.
- Poles: a point's circle that contains a pole becomes the polygon between its boundary
  and that pole's latitude line. For other geometries a region containing a pole is
  rejected (BadInput). Radii are limited to `MAX_DISTANCE_M`; below `MIN_DISTANCE_M`
  the query geometry itself is the region.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import shapely
from pyproj import Geod, Proj
from shapely.affinity import translate
from shapely.geometry import GeometryCollection, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from worldbase.core.errors import BadInput

GEOD = Geod(ellps="WGS84")
POINT_SEGMENTS = 360
BUFFER_QUAD_SEGMENTS = 64
MAX_DISTANCE_M = 5_000_000.0
MIN_DISTANCE_M = 0.01  # below a centimetre the region degenerates: treated as 0 (intersects)
_LONLAT_STEP_DEG = 0.05  # densify lon/lat edges before projecting: they are curves in AEQD
_MAX_DENSIFIED_VERTICES = 20_000


def geodesic_region(geom: BaseGeometry, metres: float) -> BaseGeometry:
    """Every lon/lat point within `metres` (geodesic, WGS84) of `geom`."""
    if not math.isfinite(metres) or metres < 0:
        raise BadInput(
            "Distance must be a finite number of metres >= 0",
            detail={"reason": "invalid distance"},
        )
    if metres > MAX_DISTANCE_M:
        raise BadInput(
            f"Distance must be at most {MAX_DISTANCE_M:.0f} metres",
            detail={"reason": "distance too large"},
        )
    if geom.is_empty:
        raise BadInput("Empty query geometry", detail={"reason": "empty geometry"})
    if metres < MIN_DISTANCE_M:
        return geom
    if isinstance(geom, Point):
        return _fold_longitudes(_point_circle(geom.x, geom.y, metres))
    return _fold_longitudes(_buffer_aeqd(geom, metres))


def _wrap(delta: np.ndarray) -> np.ndarray:
    return (delta + 180.0) % 360.0 - 180.0


def _point_circle(lon: float, lat: float, metres: float) -> Polygon:
    n = POINT_SEGMENTS
    azimuths = np.linspace(0.0, 360.0, n, endpoint=False)
    lons, lats, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), azimuths, np.full(n, metres))
    lons, lats = np.asarray(lons), np.asarray(lats)
    pole = _contained_pole(lon, lat, metres)
    if pole is None:
        return Polygon(np.column_stack([lon + _wrap(lons - lon), lats]))
    # The boundary winds once around the pole: unwrapped, its longitude spans 360 degrees.
    unwrapped = lons[0] + np.concatenate([[0.0], np.cumsum(_wrap(np.diff(lons)))])
    closing = unwrapped[0] + math.copysign(360.0, unwrapped[-1] - unwrapped[0])
    ring = [(x, y) for x, y in zip(unwrapped, lats, strict=True)]
    ring += [(closing, lats[0]), (closing, pole), (unwrapped[0], pole)]
    return shapely.make_valid(Polygon(ring))


def _contained_pole(lon: float, lat: float, metres: float) -> float | None:
    for pole in (90.0, -90.0):
        _, _, distance = GEOD.inv(lon, lat, lon, pole)
        if distance <= metres:
            return pole
    return None


@lru_cache(maxsize=256)
def _aeqd(lon: float, lat: float) -> Proj:
    return Proj(f"+proj=aeqd +lat_0={lat!r} +lon_0={lon!r} +ellps=WGS84 +units=m +no_defs")


def _buffer_aeqd(geom: BaseGeometry, metres: float) -> BaseGeometry:
    centre = geom.centroid
    aeqd = _aeqd(round(centre.x, 9), round(centre.y, 9))
    step = _LONLAT_STEP_DEG
    while shapely.get_num_coordinates(shapely.segmentize(geom, step)) > _MAX_DENSIFIED_VERTICES:
        step *= 2
    dense = shapely.segmentize(geom, step)
    projected = shapely.transform(dense, lambda xy: np.column_stack(aeqd(xy[:, 0], xy[:, 1])))
    buffered = projected.buffer(metres, quad_segs=BUFFER_QUAD_SEGMENTS)
    for pole in (90.0, -90.0):
        px, py = aeqd(0.0, pole)
        if buffered.intersects(Point(px, py)):
            raise BadInput(
                "Distance queries around a pole are supported for points only",
                detail={"reason": "region contains a pole"},
            )
    # Straight lon/lat edges must follow the projected curves closely.
    buffered = shapely.segmentize(buffered, max(metres / 8.0, 10.0))
    lon0 = centre.x

    def back(xy: np.ndarray) -> np.ndarray:
        lons, lats = aeqd(xy[:, 0], xy[:, 1], inverse=True)
        return np.column_stack([lon0 + _wrap(np.asarray(lons) - lon0), lats])

    return shapely.make_valid(shapely.transform(buffered, back))


def _fold_longitudes(region: BaseGeometry) -> BaseGeometry:
    """Split a region with longitudes beyond +-180 and shift the pieces back into range."""
    minx, _, maxx, _ = region.bounds
    if minx >= -180.0 and maxx <= 180.0:
        return region
    pieces = []
    for shift in (-360.0, 0.0, 360.0):
        window = box(-180.0 + shift, -90.0, 180.0 + shift, 90.0)
        part = region.intersection(window)
        if not part.is_empty:
            pieces.append(translate(part, xoff=-shift))
    merged = shapely.union_all(pieces)
    polygons = [g for g in getattr(merged, "geoms", [merged]) if isinstance(g, Polygon)]
    if isinstance(merged, GeometryCollection) and polygons:
        return MultiPolygon(polygons)
    return merged
