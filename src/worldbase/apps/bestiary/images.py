"""Character portraits with Pillow: sniffed, bounded, stored as WebP plus a 200x200 thumbnail.
Blocking: callers run these in a worker thread."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from worldbase.core.images import open_image

THUMBNAIL_SIZE = (200, 200)


@dataclass(frozen=True)
class Portrait:
    full: bytes
    thumbnail: bytes
    width: int
    height: int


def rgb(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def portrait(data: bytes, *, quality: int) -> Portrait:
    image = rgb(open_image(data))
    full = io.BytesIO()
    image.save(full, "WEBP", quality=quality, method=2)
    thumb = ImageOps.fit(image, THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    small = io.BytesIO()
    thumb.save(small, "WEBP", quality=quality, method=2)
    return Portrait(full.getvalue(), small.getvalue(), image.width, image.height)
