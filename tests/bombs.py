"""Decompression bombs: small files whose headers promise huge images (issue 18, item 10).

Each is made by writing a real small image and rewriting the size in its header, so they are
a few hundred bytes, yet Pillow (or anything that trusts the header) would allocate gigabytes.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A grey PNG of width x height; its pixel data inflates from a few KB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 8, 9)  # only the first rows: enough to lie
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")
    )


def webp_bomb(width: int = 16383, height: int = 16383) -> bytes:
    """A lossless WebP whose VP8L header says width x height (the format's maximum 16384)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (1, 2, 3)).save(buffer, "WEBP", lossless=True)
    data = bytearray(buffer.getvalue())
    at = data.index(b"VP8L") + 8  # chunk header: fourcc + size
    assert data[at] == 0x2F
    bits = int.from_bytes(data[at + 1 : at + 5], "little")
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    data[at + 1 : at + 5] = bits.to_bytes(4, "little")
    return bytes(data)


def jpeg_bomb(width: int = 65500, height: int = 65500) -> bytes:
    """A small JPEG whose SOF header claims width x height."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    at = data.index(b"\xff\xc0") + 5  # marker, length (2), precision (1)
    data[at : at + 4] = struct.pack(">HH", height, width)
    return bytes(data)
