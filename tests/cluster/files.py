"""The files the workload uploads, made here: PNG portraits, GeoTIFFs, a mesh."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin

# A cube as OBJ text: the model every export starts from.
CUBE_OBJ = """o cube
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 0 0 1
v 1 0 1
v 1 1 1
v 0 1 1
f 1 3 2
f 1 4 3
f 5 6 7
f 5 7 8
f 1 2 6
f 1 6 5
f 2 3 7
f 2 7 6
f 3 4 8
f 3 8 7
f 4 1 5
f 4 5 8
"""


def portrait_png(seed: int) -> bytes:
    """A distinct 96x96 picture per seed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(96, 96, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def geotiff(path: Path, size: int, seed: int) -> Path:
    """A float32 depth raster around 3 E, 52 N (UTM 31N); `size` pixels a side."""
    rng = np.random.default_rng(seed)
    ramp = (np.arange(size * size, dtype="float32").reshape(size, size) % 250) - 200
    data = ramp + rng.random((size, size), dtype="float32")
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:32631",
        "transform": from_origin(500_000, 5_770_000, 20_000 / size, 20_000 / size),
        "compress": "deflate",
        "tiled": True,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path
