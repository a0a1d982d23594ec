"""The within-distance region: geodesically right to 0.1 % of the radius, at any latitude."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, box

from worldbase.core.errors import BadInput
from worldbase.geo.geodesic import GEOD, geodesic_region

TOLERANCE = 1e-3  # the documented accuracy, as a fraction of the radius


def assert_region_matches(
    region: object, lons: np.ndarray, lats: np.ndarray, distances: np.ndarray, metres: float
) -> None:
    inside = shapely.intersects_xy(region, lons, lats)
    sure_in = distances < metres * (1 - TOLERANCE)
    sure_out = distances > metres * (1 + TOLERANCE)
    assert inside[sure_in].all(), "a point well within the distance is outside the region"
    assert not inside[sure_out].any(), "a point well beyond the distance is inside the region"
    assert sure_in.sum() > 20 and sure_out.sum() > 20  # the sample tests both sides


@pytest.mark.parametrize(
    ("lon", "lat", "metres"),
    [
        (0.0, 0.0, 1_000.0),
        (12.5, 45.0, 10_000.0),
        (-70.0, 70.0, 100_000.0),
        (150.0, -85.0, 50_000.0),
        (179.99, 10.0, 5_000.0),  # crosses the antimeridian
        (-179.5, -30.0, 1_000_000.0),
        (30.0, 89.95, 13_000.0),  # contains the north pole
        (-120.0, -88.0, 500_000.0),  # contains the south pole
        (10.0, 60.0, 0.5),
    ],
)
def test_point_regions(lon: float, lat: float, metres: float) -> None:
    region = geodesic_region(Point(lon, lat), metres)
    assert region.is_valid
    minx, miny, maxx, maxy = region.bounds
    assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
    rng = np.random.default_rng(7)
    n = 3000
    azimuths = rng.uniform(0, 360, n)
    distances = metres * rng.uniform(0.9, 1.1, n)
    lons, lats, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), azimuths, distances)
    assert_region_matches(region, np.asarray(lons), np.asarray(lats), distances, metres)


def test_antimeridian_region_is_split() -> None:
    region = geodesic_region(Point(179.99, 0.0), 5_000.0)
    assert isinstance(region, MultiPolygon) and len(region.geoms) == 2
    assert region.intersects(Point(-179.99, 0)) and region.intersects(Point(179.96, 0))
    assert not region.intersects(Point(0, 0))


def test_pole_region_reaches_the_pole() -> None:
    region = geodesic_region(Point(0.0, 89.95), 13_000.0)
    for lon in (-180.0, -90.0, 0.0, 90.0, 180.0):
        assert region.intersects(Point(lon, 90.0))
    assert region.intersects(Point(180.0, 89.95)) and not region.intersects(Point(0.0, 89.7))


@pytest.mark.parametrize(
    ("line", "metres"),
    [
        (LineString([(10.0, 50.0), (10.15, 50.1), (10.3, 50.0)]), 2_000.0),
        (LineString([(179.5, -20.0), (179.98, -20.05)]), 3_000.0),  # region crosses 180
    ],
)
def test_line_regions(line: LineString, metres: float) -> None:
    region = geodesic_region(line, metres)
    assert region.is_valid
    # true geodesic distance to the (lon/lat-straight) line via a dense sampling of it
    dense = shapely.get_coordinates(shapely.segmentize(line, 0.0001))
    rng = np.random.default_rng(3)
    n = 150
    base = dense[rng.integers(0, len(dense), n)]
    lons, lats, _ = GEOD.fwd(
        base[:, 0], base[:, 1], rng.uniform(0, 360, n), metres * rng.uniform(0.5, 1.5, n)
    )
    lons, lats = np.asarray(lons), np.asarray(lats)
    distances = np.array(
        [
            np.min(
                GEOD.inv(np.full(len(dense), x), np.full(len(dense), y), dense[:, 0], dense[:, 1])[
                    2
                ]
            )
            for x, y in zip(lons, lats, strict=True)
        ]
    )
    assert_region_matches(region, lons, lats, distances, metres)


def test_polygon_region_contains_the_polygon() -> None:
    square = box(5, 5, 5.1, 5.1)
    region = geodesic_region(square, 1_000.0)
    assert region.contains(square)
    assert region.intersects(Point(5.05, 5.1 + 0.0089)) and not region.intersects(
        Point(5.05, 5.1 + 0.0092)
    )


def test_limits() -> None:
    for metres in (-1.0, float("nan"), float("inf"), 6_000_000.0):
        with pytest.raises(BadInput):
            geodesic_region(Point(0, 0), metres)
    with pytest.raises(BadInput, match="pole"):
        geodesic_region(LineString([(0, 89.9), (90, 89.9)]), 20_000.0)
    with pytest.raises(BadInput, match="Empty"):
        geodesic_region(Point(), 10.0)
    assert geodesic_region(Point(1, 2), 0.0) == Point(1, 2)
