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
    values = np.asarray(classes, dtype=np.uint16)
    transform = from_bounds(*bounds, width, height)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint16",
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "predictor": 2,
        "num_threads": "ALL_CPUS",
        "BIGTIFF": "IF_SAFER",
    }
    rng = np.random.default_rng(seed)
    # Smooth pseudo-random fields from a few sine waves: coherent patches of every class.
    waves = (rng.uniform(0.5, 4.0, size=(6, 2)) * 2 * np.pi).astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, size=6).astype(np.float32)
    cols = ((np.arange(width, dtype=np.float32) + 0.5) / width)[None, :]
    block_rows = max(512, block_rows // 512 * 512)
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(target, "w", **profile) as dst:
        for row in range(0, height, block_rows):
            rows = min(block_rows, height - row)
            ys = (np.arange(row, row + rows, dtype=np.float32) + 0.5)[:, None] / height
            field = np.zeros((rows, width), dtype=np.float32)
            for (kx, ky), phase in zip(waves, phases, strict=True):
                field += np.sin(kx * cols + (ky * ys + phase))
            # Cycling through the classes as the field rises gives every class its share.
            index = np.floor(field * 1.3 + 64 * len(values)).astype(np.int64) % len(values)
            data = values[index]
            # Polar caps and thin bands of "ocean" stay nodata, so masks are exercised.
            lat = 90.0 - 180.0 * ys
            data[(np.abs(field) < 0.15) | (np.abs(lat) > 84.0)] = 0
            dst.write(data, 1, window=Window(0, row, width, rows))
            if progress:
                progress(0.7 * (row + rows) / height)
        factors = []
        factor = 2
        while max(width, height) // factor >= 256:
            factors.append(factor)
            factor *= 2
        if factors:
            dst.build_overviews(factors, overview_resampling)
            dst.update_tags(ns="rio_overview", resampling=overview_resampling.name)
    if cog_layout:
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
            rasterio.shutil.copy(
                target,
                path,
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="2",
                BLOCKSIZE=512,
                OVERVIEWS="FORCE_USE_EXISTING",
                BIGTIFF="IF_SAFER",
                NUM_THREADS="ALL_CPUS",
            )
        target.unlink(missing_ok=True)
    else:
        target.replace(path)
    if progress:
        progress(1.0)
    return path
