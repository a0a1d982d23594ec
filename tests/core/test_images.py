"""core.images: untrusted image bytes are size-checked from the header before decoding."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.bombs import jpeg_bomb, png_bomb, webp_bomb
from worldbase.core.errors import BadInput
from worldbase.core.images import MAX_PIXELS, open_header, open_image


@pytest.mark.parametrize(
    "bomb",
    [png_bomb(), webp_bomb(), jpeg_bomb(), png_bomb(8000, 8000)],
    ids=["png-20000", "webp-16383", "jpeg-65500", "png-8000-below-pillows-own-limit"],
)
def test_bombs_are_refused_before_decoding(bomb: bytes) -> None:
    for open_ in (open_header, open_image):
        with pytest.raises(BadInput, match="too large"):
            open_(bomb)


def test_ordinary_images_open_and_garbage_is_bad_input() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (1, 2, 3)).save(buffer, "PNG")
    image = open_image(buffer.getvalue())
    assert image.size == (300, 200) and image.getpixel((5, 5)) == (1, 2, 3)
    assert open_image(buffer.getvalue(), max_pixels=300 * 200).size == (300, 200)
    with pytest.raises(BadInput, match="too large"):
        open_image(buffer.getvalue(), max_pixels=300 * 200 - 1)
    for garbage in (b"", b"hello", buffer.getvalue()[:60]):
        with pytest.raises(BadInput, match="Not an image"):
            open_image(garbage)
    assert MAX_PIXELS >= 7000 * 5700  # a camera photo still fits
