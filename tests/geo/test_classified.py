"""geo.classified: class tiles, vector shapes painted on top, classes near a point in any
CRS (and across the antimeridian), many colours, synthetic COGs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_bounds
from rio_tiler.io import Reader
from shapely.geometry import box

from worldbase.geo import classified
from worldbase.geo.synthetic import write_classified_cog
from worldbase.geo.tiles import lonlat_to_tile


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def _write(path: Path, data: np.ndarray, crs: str, bounds: tuple[float, ...]) -> Path:
    height, width = data.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint16",
        "crs": crs,
        "transform": from_bounds(*bounds, width, height),
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.uint16), 1)
    return path


@pytest.fixture(scope="module")
def halves(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Global lon/lat raster: west half class 104, east half 1401, a nodata stripe at 0-1 E."""
    data = np.zeros((180, 360), dtype=np.uint16)
    data[:, :180] = 104
    data[:, 181:] = 1401
    path = tmp_path_factory.mktemp("classified") / "halves.tif"
    return _write(path, data, "EPSG:4326", (-180, -90, 180, 90))


def test_classes_near_reads_the_window_around_the_point(halves: Path) -> None:
    with rasterio.open(halves) as dataset:
        assert classified.classes_near_in(dataset, -10, 10, 1_000) == [104]
        assert classified.classes_near_in(dataset, 10, 10, 1_000) == [1401]
        assert classified.classes_near_in(dataset, 0.5, 10, 1_000) == []  # nodata
        assert classified.classes_near_in(dataset, 0.5, 10, 100_000) == [104, 1401]
        # Across the antimeridian: the circle around 179.99 E reaches the west half.
        assert classified.classes_near_in(dataset, 179.99, 0, 5_000) == [104, 1401]
        assert classified.classes_near_in(dataset, 10, 89.99, 5_000) == [104, 1401]


def test_classes_near_in_a_projected_raster(tmp_path: Path) -> None:
    data = np.full((200, 200), 505, dtype=np.uint16)
    data[:, 100:] = 201
    bounds = (1_000_000.0, 6_000_000.0, 1_200_000.0, 6_200_000.0)  # EPSG:3857 metres
    path = _write(tmp_path / "merc.tif", data, "EPSG:3857", bounds)
    with rasterio.open(path) as dataset:
        lon = 1_050_000 / 6378137 * 57.29577951308232
        lat_m = 6_100_000
        lat = float(np.degrees(2 * np.arctan(np.exp(lat_m / 6378137)) - np.pi / 2))
        assert classified.classes_near_in(dataset, lon, lat, 1_000) == [505]
        assert classified.classes_near_in(dataset, lon, lat, 40_000) == [201, 505]


def test_render_paints_only_the_given_classes(halves: Path) -> None:
    z = 2
    x, y = lonlat_to_tile(-10, 10, z)
    with Reader(str(halves)) as reader:
        tile = classified.render_classes(reader, z, x, y, {104: (255, 0, 0, 255)})
        other = classified.render_classes(reader, z, x, y, {1401: (0, 0, 255, 255)})
    pixels = _pixels(tile)
    assert (pixels[..., 3] > 0).mean() > 0.9
    assert (pixels[pixels[..., 3] > 0][:, :3] == [255, 0, 0]).all()
    assert tile != classified.transparent_tile()
    assert other == classified.transparent_tile()


def test_vectors_on_top_and_many_colours(halves: Path) -> None:
    z = 4
    x, y = lonlat_to_tile(-10, 10, z)
    square = classified.VectorLayer(box(-20, 0, -5, 15), (0, 255, 0, 255))
    with Reader(str(halves)) as reader:
        tile = classified.render_classes(
            reader, z, x, y, {104: (255, 0, 0, 255)}, vectors=[square], fmt="webp"
        )
        colours = {v: (v % 256, v // 256 % 256, 7, 255) for v in range(1, 600)}
        colours[104] = (1, 2, 3, 255)
        many = classified.render_classes(reader, z, x, y, colours)
    pixels = _pixels(tile)
    found = {tuple(int(c) for c in p[:3]) for p in pixels.reshape(-1, 4)}
    assert {(255, 0, 0), (0, 255, 0)} <= found
    assert {tuple(int(c) for c in p[:3]) for p in _pixels(many).reshape(-1, 4)} == {(1, 2, 3)}


def test_synthetic_cog_has_every_class_and_overviews(tmp_path: Path) -> None:
    classes = [104, 201, 505, 1401]
    path = write_classified_cog(tmp_path / "s.tif", width=1024, height=512, classes=classes, seed=1)
    with rasterio.open(path) as dataset:
        assert dataset.overviews(1) and dataset.dtypes[0] == "uint16" and dataset.nodata == 0
        values = set(np.unique(dataset.read(1)).tolist())
    assert values == {0, *classes}
