"""Adventuring gear for the procedural item painter: lockpicks, rope, torch, rune stone.

Same contract as item_shapes' painters: colour on `c`, silhouette on `m` (the glow),
centred on (x, y) at scale s. These are the game's own starting items (Lockpicks,
Rope (50ft), Torch, Sealing Stone) that the weapon and trinket painters did not cover.
"""

from __future__ import annotations

import math
from typing import Any

from PIL import ImageDraw

from worldbase.apps.dnd.shapes import RGB, Rng, _scale

Draw = ImageDraw.ImageDraw

GEAR = {
    "lockpicks": "lockpicks", "lockpick": "lockpicks", "picks": "lockpicks",
    "thieves": "lockpicks", "rope": "rope", "cord": "rope", "lasso": "rope",
    "torch": "torch", "brand": "torch", "stone": "stone", "runestone": "stone",
    "rock": "stone", "pebble": "stone",
}  # fmt: skip


def both(draws: tuple[Draw, Draw], method: str, xy: Any, fill: RGB, **kw: Any) -> None:
    """Draw on the colour layer and its mask at once."""
    color, mask = draws
    getattr(color, method)(xy, fill=fill, **kw)
    getattr(mask, method)(xy, fill=255, **kw)


def _lockpicks(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    """A fan of thin steel picks on a leather roll, each with its own tip."""
    d = (c, m)
    both(d, "rounded_rectangle", (x - s * 0.9, y + s * 0.45, x + s * 0.9, y + s * 0.85),
         (110, 70, 40), radius=int(s * 0.08))  # fmt: skip
    steel = (205, 210, 220)
    width = max(3, int(s * 0.035))
    for i, angle in enumerate((-32, -16, 0, 16, 32)):
        a = math.radians(angle)
        bx, by = x + s * 0.12 * (i - 2), y + s * 0.55
        tx, ty = bx + math.sin(a) * s * 1.2, by - math.cos(a) * s * 1.2
        both(d, "line", (bx, by, tx, ty), steel, width=width)
        # The working tip: a hook, a diamond or a rake.
        tip = i % 3
        if tip == 0:
            both(d, "line", (tx, ty, tx + s * 0.08, ty + s * 0.06), steel, width=width)
        elif tip == 1:
            both(d, "polygon", [(tx, ty - s * 0.06), (tx + s * 0.05, ty), (tx, ty + s * 0.06),
                                (tx - s * 0.05, ty)], steel)  # fmt: skip
        else:
            for k in range(3):
                ky = ty + s * 0.05 * k
                both(d, "line", (tx, ky, tx + s * 0.05, ky - s * 0.03), steel, width=width)
        both(d, "rounded_rectangle", (bx - s * 0.05, by - s * 0.02, bx + s * 0.05, by + s * 0.2),
             (60, 45, 35), radius=int(s * 0.02))  # fmt: skip
    # The tension wrench: an L across the front.
    both(d, "line", (x - s * 0.7, y + s * 0.3, x + s * 0.5, y + s * 0.3), _scale(accent, 0.9),
         width=width)  # fmt: skip
    both(d, "line", (x + s * 0.5, y + s * 0.3, x + s * 0.5, y + s * 0.15), _scale(accent, 0.9),
         width=width)  # fmt: skip


def _rope(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    """A coil of hemp rope: stacked rings with twisted strands and a loose end."""
    d = (c, m)
    hemp, dark = (200, 165, 105), (140, 105, 60)
    thick = max(4, int(s * 0.09))
    for i in range(6):
        top = y - s * 0.5 + i * s * 0.12
        box = (x - s * 0.75, top, x + s * 0.75, top + s * 0.7)
        c.ellipse(box, outline=hemp, width=thick)
        m.ellipse(box, outline=255, width=thick)
        for t in range(0, 360, 20):  # the twist
            a = math.radians(t + i * 7)
            px = x + math.cos(a) * s * 0.75
            py = top + s * 0.35 + math.sin(a) * s * 0.35
            c.line((px - s * 0.02, py - s * 0.03, px + s * 0.02, py + s * 0.03), fill=dark,
                   width=max(1, thick // 3))  # fmt: skip
    end = [(x + s * 0.7, y + s * 0.4), (x + s * 0.9, y + s * 0.7), (x + s * 0.75, y + s * 0.95)]
    both(d, "line", end, hemp, width=thick)


def _torch(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    """A wooden stick wrapped in rags, burning."""
    d = (c, m)
    both(d, "polygon", [(x - s * 0.08, y - s * 0.2), (x + s * 0.08, y - s * 0.2),
                         (x + s * 0.05, y + s * 1.0), (x - s * 0.05, y + s * 1.0)],
         (110, 70, 40))  # fmt: skip
    for i in range(4):  # rag wraps
        ry = y - s * 0.3 + i * s * 0.09
        both(d, "rounded_rectangle", (x - s * 0.14, ry, x + s * 0.14, ry + s * 0.1),
             (150, 130, 100), radius=int(s * 0.03))  # fmt: skip
    for scale, color in ((1.0, (255, 120, 30)), (0.7, (255, 190, 60)), (0.4, (255, 245, 200))):
        h, w = s * 0.75 * scale, s * 0.3 * scale
        flame = [(x, y - s * 0.3 - h), (x + w, y - s * 0.45), (x + w * 0.6, y - s * 0.28),
                 (x - w * 0.6, y - s * 0.28), (x - w, y - s * 0.45)]  # fmt: skip
        both(d, "polygon", flame, color)


def _stone(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    """A smooth stone with glowing carved runes."""
    d = (c, m)
    both(d, "ellipse", (x - s * 0.75, y - s * 0.55, x + s * 0.75, y + s * 0.6), (120, 125, 135))
    c.ellipse((x - s * 0.6, y - s * 0.48, x + s * 0.3, y + s * 0.1), fill=(150, 155, 165))
    glow = _scale(accent, 1.3)
    width = max(2, int(s * 0.04))
    for i in range(3):
        rx = x - s * 0.35 + i * s * 0.35
        strokes = [(rx, y - s * 0.2), (rx + s * 0.1, y + s * 0.05), (rx - s * 0.05, y + s * 0.25)]
        c.line(strokes, fill=glow, width=width)
        c.line((rx - s * 0.08, y - s * 0.05, rx + s * 0.12, y - s * 0.1), fill=glow, width=width)


PAINTERS = {"lockpicks": _lockpicks, "rope": _rope, "torch": _torch, "stone": _stone}
