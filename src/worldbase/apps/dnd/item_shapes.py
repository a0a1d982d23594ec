"""Items the procedural painter draws on their glowing backdrop: one painter per item kind.

Each painter draws the item in colour on one layer and its silhouette on a mask (used
for the glow), sized from the centre (x, y) and scale s.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFilter

from worldbase.apps.dnd import item_gear
from worldbase.apps.dnd.item_gear import both as _both
from worldbase.apps.dnd.shapes import RGB, Rng, _scale

Draw = ImageDraw.ImageDraw

ITEMS = {
    "sword": "sword", "longsword": "sword", "blade": "sword", "greatsword": "sword",
    "scimitar": "sword", "dagger": "dagger", "knife": "dagger", "potion": "potion",
    "elixir": "potion", "flask": "potion", "vial": "potion", "shield": "shield",
    "staff": "staff", "wand": "staff", "rod": "staff", "scroll": "scroll", "map": "scroll",
    "ring": "ring", "amulet": "amulet", "necklace": "amulet", "pendant": "amulet",
    "bow": "bow", "longbow": "bow", "crossbow": "bow", "axe": "axe", "hammer": "axe",
    "helmet": "helmet", "helm": "helmet", "crown": "helmet", "chest": "chest",
    "treasure": "chest", "key": "key", "book": "book", "tome": "book", "spellbook": "book",
    "grimoire": "book", "gem": "gem", "crystal": "gem", "orb": "gem", "jewel": "gem",
    "note": "scroll", "letter": "scroll", "parchment": "scroll", "spear": "staff",
    **item_gear.GEAR,
}  # fmt: skip


def kind_of(words: Sequence[str]) -> str | None:
    """The item the text names first (the subject's name comes first in a prompt)."""
    return next((ITEMS[w] for w in words if w in ITEMS), None)


# --- Painting -------------------------------------------------------------------------------------


def item(image: Image.Image, words: Sequence[str], accent: RGB, rng: Rng) -> None:
    """Paint the item `words` (in text order) name first; an unknown item gets a seeded kind."""
    kinds = sorted(set(ITEMS.values()))
    kind = kind_of(words) or kinds[int(rng.integers(len(kinds)))]
    w, h = image.size
    s = min(w, h) * 0.36
    cx, cy = w / 2, h / 2
    mask = Image.new("L", image.size, 0)
    layer = Image.new("RGB", image.size, (0, 0, 0))
    _ITEM_PAINTERS[kind](ImageDraw.Draw(layer), ImageDraw.Draw(mask), cx, cy, s, accent, rng)
    glow = mask.filter(ImageFilter.GaussianBlur(s * 0.12)).point(lambda v: int(v * 0.8))
    image.paste(Image.new("RGB", image.size, accent), mask=glow)
    image.paste(layer, mask=mask)
    draw = ImageDraw.Draw(image)
    for _ in range(40):  # sparkles
        x, y = cx + (rng.random() - 0.5) * s * 2.6, cy + (rng.random() - 0.5) * s * 2.6
        r = 1 + rng.random() * 3
        draw.ellipse((x - r, y - r, x + r, y + r), fill=_scale(accent, 1.4))


def _sword(
    c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng, short: bool = False
) -> None:
    d, k = (c, m), (0.6 if short else 1.0)
    steel = (215, 220, 230)
    _both(
        d,
        "polygon",
        [
            (x - s * 0.07, y + s * 0.3),
            (x - s * 0.07, y - s * 0.9 * k),
            (x, y - s * 1.05 * k),
            (x + s * 0.07, y - s * 0.9 * k),
            (x + s * 0.07, y + s * 0.3),
        ],
        steel,
    )
    c.line(
        (x, y + s * 0.25, x, y - s * 0.95 * k),
        fill=_scale(accent, 1.2),
        width=max(2, int(s * 0.02)),
    )
    _both(
        d,
        "rounded_rectangle",
        (x - s * 0.35, y + s * 0.3, x + s * 0.35, y + s * 0.4),
        (190, 150, 60),
        radius=int(s * 0.04),
    )
    _both(d, "rectangle", (x - s * 0.05, y + s * 0.4, x + s * 0.05, y + s * 0.75), (90, 55, 35))
    _both(d, "ellipse", (x - s * 0.1, y + s * 0.72, x + s * 0.1, y + s * 0.9), accent)


def _dagger(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    _sword(c, m, x, y + s * 0.2, s, accent, rng, short=True)


def _potion(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(d, "ellipse", (x - s * 0.55, y - s * 0.25, x + s * 0.55, y + s * 0.85), (200, 220, 235))
    c.chord((x - s * 0.5, y - s * 0.2, x + s * 0.5, y + s * 0.8), 0, 180, fill=accent)
    c.chord(
        (x - s * 0.5, y - s * 0.2, x + s * 0.5, y + s * 0.8), -20, 200, fill=_scale(accent, 0.8)
    )
    _both(d, "rectangle", (x - s * 0.14, y - s * 0.65, x + s * 0.14, y - s * 0.2), (200, 220, 235))
    _both(d, "rectangle", (x - s * 0.17, y - s * 0.8, x + s * 0.17, y - s * 0.62), (140, 95, 55))
    c.ellipse((x - s * 0.3, y, x - s * 0.15, y + s * 0.25), fill=(255, 255, 255))


def _shield(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(
        d,
        "polygon",
        [
            (x - s * 0.7, y - s * 0.8),
            (x + s * 0.7, y - s * 0.8),
            (x + s * 0.65, y + s * 0.1),
            (x, y + s * 0.9),
            (x - s * 0.65, y + s * 0.1),
        ],
        (170, 175, 185),
    )
    c.polygon(
        [
            (x - s * 0.58, y - s * 0.7),
            (x + s * 0.58, y - s * 0.7),
            (x + s * 0.53, y + s * 0.05),
            (x, y + s * 0.75),
            (x - s * 0.53, y + s * 0.05),
        ],
        fill=_scale(accent, 0.8),
    )
    c.rectangle((x - s * 0.08, y - s * 0.7, x + s * 0.08, y + s * 0.7), fill=(230, 200, 90))
    c.rectangle((x - s * 0.55, y - s * 0.3, x + s * 0.55, y - s * 0.15), fill=(230, 200, 90))


def _staff(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(
        d,
        "line",
        (x - s * 0.3, y + s * 1.0, x + s * 0.25, y - s * 0.7),
        (110, 70, 40),
        width=int(s * 0.08),
    )
    _both(d, "ellipse", (x + s * 0.05, y - s * 1.0, x + s * 0.5, y - s * 0.55), accent)
    c.ellipse((x + s * 0.15, y - s * 0.9, x + s * 0.28, y - s * 0.77), fill=(255, 255, 255))


def _scroll(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(d, "rectangle", (x - s * 0.6, y - s * 0.7, x + s * 0.6, y + s * 0.7), (235, 220, 180))
    for yy in (y - s * 0.75, y + s * 0.65):
        _both(
            d,
            "rounded_rectangle",
            (x - s * 0.7, yy, x + s * 0.7, yy + s * 0.14),
            (170, 130, 80),
            radius=int(s * 0.06),
        )
    for i in range(7):
        ly = y - s * 0.45 + i * s * 0.15
        c.line(
            (x - s * 0.45, ly, x + s * (0.1 + 0.3 * rng.random()), ly), fill=(90, 70, 60), width=3
        )
    c.ellipse((x + s * 0.2, y + s * 0.25, x + s * 0.45, y + s * 0.5), fill=accent)


def _ring(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(d, "ellipse", (x - s * 0.6, y - s * 0.4, x + s * 0.6, y + s * 0.8), (235, 195, 70))
    c.ellipse((x - s * 0.42, y - s * 0.22, x + s * 0.42, y + s * 0.62), fill=(0, 0, 0))
    m.ellipse((x - s * 0.42, y - s * 0.22, x + s * 0.42, y + s * 0.62), fill=0)
    _both(
        d,
        "polygon",
        [
            (x, y - s * 0.75),
            (x + s * 0.25, y - s * 0.45),
            (x, y - s * 0.25),
            (x - s * 0.25, y - s * 0.45),
        ],
        accent,
    )


def _amulet(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(
        d,
        "arc",
        (x - s * 0.6, y - s * 1.0, x + s * 0.6, y + s * 0.2),
        (220, 190, 80),
        start=0,
        end=180,
        width=int(s * 0.04),
    )
    _both(d, "ellipse", (x - s * 0.35, y + s * 0.0, x + s * 0.35, y + s * 0.7), (220, 190, 80))
    _both(d, "ellipse", (x - s * 0.24, y + s * 0.11, x + s * 0.24, y + s * 0.59), accent)


def _bow(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(
        d,
        "arc",
        (x - s * 0.9, y - s * 1.0, x + s * 0.3, y + s * 1.0),
        (130, 85, 45),
        start=-70,
        end=70,
        width=int(s * 0.08),
    )
    top, bottom = (x + s * 0.03, y - s * 0.94), (x + s * 0.03, y + s * 0.94)
    _both(d, "line", (top, bottom), (230, 230, 220), width=3)
    _both(d, "line", (x - s * 0.6, y, x + s * 0.7, y), (150, 120, 80), width=int(s * 0.03))
    _both(
        d,
        "polygon",
        [(x + s * 0.7, y - s * 0.06), (x + s * 0.85, y), (x + s * 0.7, y + s * 0.06)],
        accent,
    )


def _axe(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(d, "line", (x, y + s * 0.95, x, y - s * 0.8), (100, 65, 35), width=int(s * 0.08))
    _both(
        d,
        "chord",
        (x - s * 0.7, y - s * 0.85, x + s * 0.1, y - s * 0.05),
        (200, 205, 215),
        start=90,
        end=270,
    )
    _both(
        d,
        "chord",
        (x - s * 0.1, y - s * 0.85, x + s * 0.7, y - s * 0.05),
        (200, 205, 215),
        start=-90,
        end=90,
    )
    c.rectangle((x - s * 0.08, y - s * 0.55, x + s * 0.08, y - s * 0.35), fill=accent)


def _helmet(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(
        d,
        "chord",
        (x - s * 0.6, y - s * 0.7, x + s * 0.6, y + s * 0.7),
        (185, 190, 200),
        start=180,
        end=360,
    )
    _both(d, "rectangle", (x - s * 0.6, y - s * 0.02, x + s * 0.6, y + s * 0.5), (185, 190, 200))
    c.rectangle((x - s * 0.45, y + s * 0.1, x + s * 0.45, y + s * 0.2), fill=(20, 20, 25))
    c.rectangle((x - s * 0.05, y + s * 0.1, x + s * 0.05, y + s * 0.45), fill=(20, 20, 25))
    _both(
        d,
        "polygon",
        [(x - s * 0.08, y - s * 0.7), (x, y - s * 1.0), (x + s * 0.08, y - s * 0.7)],
        accent,
    )


def _chest(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(d, "rectangle", (x - s * 0.8, y - s * 0.1, x + s * 0.8, y + s * 0.7), (120, 75, 40))
    _both(
        d,
        "chord",
        (x - s * 0.8, y - s * 0.55, x + s * 0.8, y + s * 0.35),
        (140, 90, 50),
        start=180,
        end=360,
    )
    for bx in (x - s * 0.6, x + s * 0.5):
        c.rectangle((bx, y - s * 0.55, bx + s * 0.1, y + s * 0.7), fill=(210, 180, 80))
    c.rectangle((x - s * 0.12, y - s * 0.15, x + s * 0.12, y + s * 0.15), fill=(230, 200, 90))
    for _ in range(12):
        gx, gy = x + (rng.random() - 0.5) * s * 1.2, y - s * (0.05 + 0.15 * rng.random())
        c.ellipse((gx - s * 0.06, gy - s * 0.06, gx + s * 0.06, gy + s * 0.06), fill=accent)


def _key(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(d, "ellipse", (x - s * 0.35, y - s * 0.95, x + s * 0.35, y - s * 0.25), (225, 190, 70))
    c.ellipse((x - s * 0.15, y - s * 0.75, x + s * 0.15, y - s * 0.45), fill=accent)
    _both(d, "rectangle", (x - s * 0.07, y - s * 0.3, x + s * 0.07, y + s * 0.9), (225, 190, 70))
    for ty in (y + s * 0.55, y + s * 0.75):
        _both(d, "rectangle", (x + s * 0.07, ty, x + s * 0.3, ty + s * 0.1), (225, 190, 70))


def _book(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(d, "rectangle", (x - s * 0.6, y - s * 0.8, x + s * 0.6, y + s * 0.8), _scale(accent, 0.6))
    c.rectangle((x + s * 0.5, y - s * 0.75, x + s * 0.6, y + s * 0.75), fill=(240, 230, 200))
    c.ellipse(
        (x - s * 0.25, y - s * 0.3, x + s * 0.25, y + s * 0.2),
        outline=(240, 210, 100),
        width=int(s * 0.04),
    )
    c.rectangle((x - s * 0.6, y - s * 0.8, x - s * 0.45, y + s * 0.8), fill=_scale(accent, 0.4))


def _gem(c: Draw, m: Draw, x: float, y: float, s: float, accent: RGB, rng: Rng) -> None:
    d = (c, m)
    _both(
        d,
        "polygon",
        [
            (x - s * 0.5, y - s * 0.3),
            (x - s * 0.25, y - s * 0.6),
            (x + s * 0.25, y - s * 0.6),
            (x + s * 0.5, y - s * 0.3),
            (x, y + s * 0.6),
        ],
        accent,
    )
    c.polygon(
        [(x - s * 0.25, y - s * 0.6), (x, y - s * 0.3), (x + s * 0.25, y - s * 0.6)],
        fill=_scale(accent, 1.4),
    )
    c.polygon(
        [(x - s * 0.5, y - s * 0.3), (x, y - s * 0.3), (x, y + s * 0.6)], fill=_scale(accent, 0.7)
    )


_ITEM_PAINTERS = {
    "sword": _sword, "dagger": _dagger, "potion": _potion, "shield": _shield, "staff": _staff,
    "scroll": _scroll, "ring": _ring, "amulet": _amulet, "bow": _bow, "axe": _axe,
    "helmet": _helmet, "chest": _chest, "key": _key, "book": _book, "gem": _gem,
    **item_gear.PAINTERS,
}  # fmt: skip
