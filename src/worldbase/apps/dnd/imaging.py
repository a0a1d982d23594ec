"""Pillow work of the dnd app: WebP encoding, 200x200 thumbnails, checking uploaded images.

All functions here are blocking; callers run them with `asyncio.to_thread`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from worldbase.core.images import open_image

THUMBNAIL_SIZE = (200, 200)
SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1024, 576),
    "4:3": (1024, 768),
    "9:16": (576, 1024),
}


@dataclass(frozen=True)
class Encoded:
    full: bytes
    thumbnail: bytes
    width: int
    height: int


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def encode(image: Image.Image, *, quality: int) -> Encoded:
    """The full image and a 200x200 centre-cropped thumbnail, both WebP."""
    image = _rgb(image)
    full = io.BytesIO()
    image.save(full, "WEBP", quality=quality, method=2)
    thumb = ImageOps.fit(image, THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    small = io.BytesIO()
    thumb.save(small, "WEBP", quality=quality, method=2)
    return Encoded(full.getvalue(), small.getvalue(), image.width, image.height)


def decode(data: bytes) -> Image.Image:
    """Open image bytes whatever their format (sniffed, not trusted); `BadInput` otherwise."""
    # Decoding bombs: a LocalStorage dump or a provider answer may not be a 40k x 40k PNG.
    return open_image(data)


def aspect_ratio_of(width: int, height: int) -> str:
    """The supported ratio closest to width/height (migrated images carry none)."""
    ratio = width / max(height, 1)
    return min(SIZES, key=lambda name: abs(SIZES[name][0] / SIZES[name][1] - ratio))
