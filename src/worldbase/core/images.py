"""Pillow for every app: opening untrusted image bytes bounded in pixels, and WebP with a
200x200 thumbnail.

The size is read from the header and checked before anything is decoded, so a 20000x20000
PNG, a 16383x16383 WebP or a JPEG whose header claims 65500x65500 is refused at once (422)
instead of allocating gigabytes or escaping as Pillow's `DecompressionBombError` (a 500).
Blocking: callers run these in a worker thread.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from worldbase.core.errors import BadInput

# 40 megapixels: a 7000x5700 camera photo fits; about 160 MB once decoded as RGBA.
MAX_PIXELS = 40_000_000
THUMBNAIL_SIZE = (200, 200)


def open_header(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The image with only its header read, its size checked; `BadInput` for anything else.

    Decode with `.load()` (or `draft` first for JPEG) afterwards."""
    if not data:
        raise BadInput("Not an image: the file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit and raises above twice it; both are refusals.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput(f"Image is too large: more than {max_pixels} pixels") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadInput(f"Not an image ({type(exc).__name__})") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise BadInput(f"Image is too large: {width}x{height} pixels; at most {max_pixels}")
    return image


def open_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The image decoded, at most `max_pixels`; `BadInput` for a non-image, a truncated or
    corrupt file, or one that is too large."""
    image = open_header(data, max_pixels=max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput(f"Image is too large: more than {max_pixels} pixels") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadInput(f"Not an image ({type(exc).__name__})") from None
    return image


@dataclass(frozen=True)
class WebpImage:
    """An image as WebP, its 200x200 centre-cropped thumbnail, and its size."""

    full: bytes
    thumbnail: bytes
    width: int
    height: int


def rgb_on_black(image: Image.Image, *, upright: bool = False) -> Image.Image:
    """RGB, transparency flattened onto black; `upright` first turns a photo as its EXIF
    orientation says."""
    if upright:
        image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def encode_webp(image: Image.Image, *, quality: int, upright: bool = False) -> WebpImage:
    """The image (made RGB by `rgb_on_black`) and its thumbnail, both WebP."""
    image = rgb_on_black(image, upright=upright)
    full = io.BytesIO()
    image.save(full, "WEBP", quality=quality, method=2)
    thumb = ImageOps.fit(image, THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    small = io.BytesIO()
    thumb.save(small, "WEBP", quality=quality, method=2)
    return WebpImage(full.getvalue(), small.getvalue(), image.width, image.height)


def decode_to_webp(data: bytes, *, quality: int, upright: bool = False) -> WebpImage:
    """`open_image` then `encode_webp`."""
    return encode_webp(open_image(data), quality=quality, upright=upright)
