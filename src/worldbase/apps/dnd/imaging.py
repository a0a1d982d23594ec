"""Image sizes of the dnd app (decoding and WebP encoding are `core.images`)."""

from __future__ import annotations

SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1024, 576),
    "4:3": (1024, 768),
    "9:16": (576, 1024),
}


def aspect_ratio_of(width: int, height: int) -> str:
    """The supported ratio closest to width/height (migrated images carry none)."""
    ratio = width / max(height, 1)
    return min(SIZES, key=lambda name: abs(SIZES[name][0] / SIZES[name][1] - ratio))
