"""Tile maths and ETags (the conditional tile response: test_tile_cache, `serve`)."""

from __future__ import annotations

import math

import pytest

from worldbase.core.errors import BadInput
from worldbase.geo.tiles import (
    MAX_ZOOM,
    etag_for,
    lonlat_to_tile,
    tile_bounds_lonlat,
    tile_bounds_mercator,
    validate_tile,
)

MAX_LAT = 85.0511287798066


@pytest.mark.parametrize(("z", "x", "y"), [(0, 0, 0), (1, 1, 1), (14, 8647, 5480), (24, 0, 0)])
def test_valid_tiles(z: int, x: int, y: int) -> None:
    validate_tile(z, x, y)


@pytest.mark.parametrize(
    ("z", "x", "y", "words"),
    [
        (-1, 0, 0, "zoom -1 is out of range"),
        (25, 0, 0, "zoom 25 is out of range"),
        (0, 1, 0, "x=1 is out of range at zoom 0: 0 to 0"),
        (3, 0, 8, "y=8 is out of range at zoom 3: 0 to 7"),
        (3, -1, 0, "x=-1"),
    ],
)
def test_invalid_tiles(z: int, x: int, y: int, words: str) -> None:
    with pytest.raises(BadInput, match=words) as caught:
        validate_tile(z, x, y)
    assert caught.value.status_code == 422


def test_max_zoom_is_configurable() -> None:
    validate_tile(MAX_ZOOM, 0, 0)
    with pytest.raises(BadInput, match="0 to 16"):
        validate_tile(17, 0, 0, max_zoom=16)


def test_bounds() -> None:
    assert tile_bounds_lonlat(0, 0, 0) == pytest.approx((-180, -MAX_LAT, 180, MAX_LAT))
    assert tile_bounds_lonlat(1, 1, 0) == pytest.approx((0, 0, 180, MAX_LAT), abs=1e-9)
    assert tile_bounds_lonlat(1, 0, 1) == pytest.approx((-180, -MAX_LAT, 0, 0), abs=1e-9)
    half = math.pi * 6378137
    assert tile_bounds_mercator(0, 0, 0) == pytest.approx((-half, -half, half, half))
    assert tile_bounds_mercator(1, 1, 1) == pytest.approx((0, -half, half, 0), abs=1e-6)


def test_lonlat_to_tile_round_trips_with_bounds() -> None:
    for z in (0, 5, 12, 20):
        x, y = lonlat_to_tile(10.0, 51.0, z)
        west, south, east, north = tile_bounds_lonlat(z, x, y)
        assert west <= 10.0 < east and south < 51.0 <= north
    assert lonlat_to_tile(180.0, -90.0, 2) == (3, 3)  # clamped to the last tile


def test_etag() -> None:
    tag = etag_for("layer", "7", b"\x00")
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert tag == etag_for("layer", "7", b"\x00")
    assert tag != etag_for("layer", "8", b"\x00")
    assert etag_for("ab", "c") != etag_for("a", "bc")
