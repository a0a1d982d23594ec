"""Synthetic classified rasters (seed data, tests, benchmarks), written block by block so
even a 40,000 x 20,000 raster never sits in memory at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.windows import Window


def write_classified_cog(
    path: Path,
    *,
    width: int,
    height: int,
    classes: Sequence[int],
    bounds: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0),
    seed: int = 0,
    block_rows: int = 1024,
    overview_resampling: Resampling = Resampling.mode,
    cog_layout: bool = True,
    progress: Callable[[float], None] | None = None,
) -> Path:
    """A uint16 classified raster in EPSG:4326 (nodata 0) with patchy, blob-like classes.

    Written block by block into a tiled (512 px), deflated GeoTIFF with internal overviews;
    with `cog_layout` then copied into the COG layout (overviews first, for HTTP range
    reads). Memory stays around `width * block_rows * 12` bytes, so a 40,000 x 20,000 raster
    can be made on a small machine (`overview_resampling=nearest` and `cog_layout=False`
    keep that to about a minute).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_name(path.name + ".tmp.tif")
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint16",
        "crs": "EPSG:4326",
        "transform": from_bounds(*bounds, width, height),
        "nodata": 0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "predictor": 2,
        "num_threads": "ALL_CPUS",
        "BIGTIFF": "IF_SAFER",
    }
    blocks = _ClassBlocks(width, height, np.asarray(classes, dtype=np.uint16), seed)
    block_rows = max(512, block_rows // 512 * 512)
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(target, "w", **profile) as dst:
        for row in range(0, height, block_rows):
            rows = min(block_rows, height - row)
            dst.write(blocks.rows(row, rows), 1, window=Window(0, row, width, rows))
            if progress:
                progress(0.7 * (row + rows) / height)
        factors = _overview_factors(width, height)
        if factors:
            dst.build_overviews(factors, overview_resampling)
            dst.update_tags(ns="rio_overview", resampling=overview_resampling.name)
    if cog_layout:
        _copy_as_cog(target, path)
        target.unlink(missing_ok=True)
    else:
        target.replace(path)
    if progress:
        progress(1.0)
    return path


class _ClassBlocks:
    """Smooth pseudo-random fields from a few sine waves: coherent patches of every class."""

    def __init__(self, width: int, height: int, values: np.ndarray, seed: int):
        rng = np.random.default_rng(seed)
        self.waves = (rng.uniform(0.5, 4.0, size=(6, 2)) * 2 * np.pi).astype(np.float32)
        self.phases = rng.uniform(0, 2 * np.pi, size=6).astype(np.float32)
        self.cols = ((np.arange(width, dtype=np.float32) + 0.5) / width)[None, :]
        self.width, self.height, self.values = width, height, values

    def rows(self, row: int, rows: int) -> np.ndarray:
        """The classes of `rows` full-width rows from `row` down."""
        ys = (np.arange(row, row + rows, dtype=np.float32) + 0.5)[:, None] / self.height
        field = np.zeros((rows, self.width), dtype=np.float32)
        for (kx, ky), phase in zip(self.waves, self.phases, strict=True):
            field += np.sin(kx * self.cols + (ky * ys + phase))
        # Cycling through the classes as the field rises gives every class its share.
        count = len(self.values)
        index = np.floor(field * 1.3 + 64 * count).astype(np.int64) % count
        data: np.ndarray = self.values[index]
        # Polar caps and thin bands of "ocean" stay nodata, so masks are exercised.
        lat = 90.0 - 180.0 * ys
        data[(np.abs(field) < 0.15) | (np.abs(lat) > 84.0)] = 0
        return data


def _overview_factors(width: int, height: int) -> list[int]:
    """Powers of two down to the last level of at least 256 px on the longer side."""
    factors = []
    factor = 2
    while max(width, height) // factor >= 256:
        factors.append(factor)
        factor *= 2
    return factors


def _copy_as_cog(source: Path, path: Path) -> None:
    """The COG layout (overviews first, for HTTP range reads), reusing the built overviews."""
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        rasterio.shutil.copy(
            source,
            path,
            driver="COG",
            COMPRESS="DEFLATE",
            PREDICTOR="2",
            BLOCKSIZE=512,
            OVERVIEWS="FORCE_USE_EXISTING",
            BIGTIFF="IF_SAFER",
            NUM_THREADS="ALL_CPUS",
        )
