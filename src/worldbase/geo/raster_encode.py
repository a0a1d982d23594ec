"""Encoding rendered rasters: 8-bit gray, RGB and RGBA PNG through OpenCV (libpng),
everything else (gray+alpha and 16-bit PNG, WebP, JPEG, GeoTIFF, NPY) through rio-tiler.

PNG: zlib level 6, as GDAL's PNG driver (rio-tiler's, so TiTiler's) by default, with the
Paeth filter on every row instead of libpng's per-row choice: 1.02x TiTiler's bytes for
15% less CPU (level 5 would be 1.2x the bytes, level 1 1.7x; bench/raster.py). OpenCV
rather than GDAL or Pillow because it lets go of the GIL while it compresses, so tiles
encode in parallel in `geo.raster`'s render threads.
"""

from __future__ import annotations

import warnings
from typing import Any

import cv2
import numpy
from rio_tiler.colormap import apply_cmap
from rio_tiler.models import ImageData

from worldbase.core.errors import BadInput
from worldbase.geo.raster_params import RenderParams

FORMATS = {
    "png": "image/png",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "tif": "image/tiff; application=geotiff",
    "npy": "application/x-binary",
}
PNG_LEVEL = 6
_PNG_OPTIONS = [
    cv2.IMWRITE_PNG_COMPRESSION,
    PNG_LEVEL,
    cv2.IMWRITE_PNG_FILTER,
    cv2.IMWRITE_PNG_FILTER_PAETH,
]
_TO_BGR = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}  # OpenCV's channel order


def encode_png(pixels: numpy.ndarray) -> bytes:
    """An 8-bit PNG of an (h, w, channels) uint8 array: gray, RGB or RGBA."""
    channels = pixels.shape[2]
    if channels in _TO_BGR:
        pixels = cv2.cvtColor(pixels, _TO_BGR[channels])
    return cv2.imencode(".png", pixels, _PNG_OPTIONS)[1].tobytes()


def encode(img: ImageData, params: RenderParams, fmt: str) -> bytes:
    """The image in `fmt` after `rescale` and the colormap (rio-tiler's semantics)."""
    if fmt in ("npy", "tif"):
        driver = "NPY" if fmt == "npy" else "GTiff"
        return img.render(add_mask=params.return_mask, img_format=driver)
    if params.rescale:
        img.rescale(in_range=params.rescale)
    colormap = params.color_map()
    if fmt == "png" and img.array.dtype == numpy.uint8:
        data = img.array.data
        mask = img.mask
        if colormap is not None and data.shape[0] == 1:
            data, alpha = apply_cmap(data, colormap)
            mask = numpy.where(mask != 0, alpha, 0).astype(numpy.uint8)
        bands = [*data, mask] if params.return_mask else list(data)
        if len(bands) in (1, 3, 4):
            return encode_png(numpy.ascontiguousarray(numpy.stack(bands, axis=-1)))
    driver = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG"}[fmt]
    options: dict[str, Any] = {"ZLEVEL": PNG_LEVEL} if driver == "PNG" else {"QUALITY": 85}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return img.render(
            add_mask=params.return_mask and driver != "JPEG",
            img_format=driver,
            colormap=colormap,
            **options,
        )


def media_type(fmt: str) -> str:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise BadInput(
            f"Unknown tile format {fmt!r}: one of {', '.join(FORMATS)}",
            detail=[{"loc": ["path", "format"], "msg": "unknown format", "type": "value_error"}],
        ) from None
