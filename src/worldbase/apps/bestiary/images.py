"""Character portraits with Pillow: sniffed, bounded, stored as WebP plus a 200x200 thumbnail.
Blocking: callers run these in a worker thread."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from worldbase.core.errors import BadInput

THUMBNAIL_SIZE = (200, 200)
MAX_PIXELS = 40_000_000  # decompression bombs


@dataclass(frozen=True)
class Portrait:
    full: bytes
    thumbnail: bytes
    width: int
    height: int


def open_image(data: bytes) -> Image.Image:
    """Decode image bytes of any format Pillow knows; `BadInput` for anything else."""
    if not data:
        raise BadInput("Not an image: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise BadInput(f"Image is too large: {image.width}x{image.height} pixels")
            image.load()
    except BadInput:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
        raise BadInput(f"Not an image ({type(exc).__name__})") from None
    return image


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
