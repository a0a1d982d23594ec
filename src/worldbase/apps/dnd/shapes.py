"""What the procedural painter puts into its scenes: landmarks, fire, items and characters.

Each function draws with Pillow into the image it is given, sized relative to the image,
with every random choice taken from the caller's generator (same seed, same picture).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
T = TypeVar("T")
Rng = np.random.Generator

ACCENTS: dict[str, RGB] = {
    "fire": (255, 110, 30), "flame": (255, 110, 30), "flaming": (255, 110, 30),
    "red": (220, 40, 50), "blood": (180, 20, 30), "ice": (120, 210, 255),
    "frost": (120, 210, 255), "blue": (60, 110, 240), "water": (60, 140, 230),
    "poison": (110, 220, 60), "green": (60, 190, 90), "nature": (90, 200, 90),
    "gold": (250, 200, 60), "golden": (250, 200, 60), "silver": (210, 215, 230),
    "steel": (190, 200, 215), "shadow": (120, 60, 170), "dark": (110, 50, 150),
    "necrotic": (100, 200, 120), "holy": (255, 240, 170), "radiant": (255, 240, 170),
    "arcane": (170, 90, 255), "magic": (170, 90, 255), "purple": (160, 70, 220),
    "healing": (230, 50, 80), "mana": (70, 120, 255), "lightning": (170, 220, 255),
}  # fmt: skip
CLASSES = {
    "wizard": "wizard", "mage": "wizard", "sorcerer": "wizard", "warlock": "wizard",
    "witch": "wizard", "knight": "knight", "paladin": "knight", "warrior": "knight",
    "fighter": "knight", "soldier": "knight", "guard": "knight", "rogue": "rogue",
    "thief": "rogue", "assassin": "rogue", "bard": "rogue", "ranger": "ranger",
    "archer": "ranger", "hunter": "ranger", "elf": "ranger", "cleric": "cleric",
    "priest": "cleric", "monk": "cleric", "druid": "cleric", "dwarf": "dwarf",
    "barbarian": "dwarf", "goblin": "goblin", "orc": "goblin", "troll": "goblin",
    "skeleton": "skeleton", "undead": "skeleton", "lich": "skeleton", "zombie": "skeleton",
    "dragon": "dragon", "wyvern": "dragon", "drake": "dragon",
}  # fmt: skip


def _scale(color: RGB, factor: float) -> RGB:
    return (
        min(255, int(color[0] * factor)),
        min(255, int(color[1] * factor)),
        min(255, int(color[2] * factor)),
    )


def pick_keyword(words: frozenset[str], table: dict[str, T], rng: Rng, options: list[T]) -> T:
    """The table's value for the first word (alphabetically) it knows, else one of `options`
    drawn from `rng` (so an unsaid choice is still the seed's)."""
    found = [table[w] for w in sorted(words) if w in table]
    return found[0] if found else options[int(rng.integers(len(options)))]


def accent_color(words: frozenset[str], rng: Rng) -> RGB:
    return pick_keyword(words, ACCENTS, rng, list(ACCENTS.values()))


# --- Landscape ---------------------------------------------------------------------------------

Ground = Callable[[float], float]


def landmarks(
    image: Image.Image, terrain: str, line: np.ndarray, rng: Rng, *, far: bool, light: float,
    night: bool,
) -> None:  # fmt: skip
    """What stands on a ridge `line` (the ground's height per column) of the given terrain:
    the far ridge gets small distant shapes, the near one a few large ones at the sides."""
    w, h = image.size
    draw = ImageDraw.Draw(image)
    size = min(w, h) * (0.05 if far else 0.16)

    def ground(x: float) -> float:
        return float(line[int(np.clip(x, 0, w - 1))])

    if terrain in ("forest", "swamp") or (terrain == "plains" and far):
        _trees(draw, w, ground, size, rng, terrain=terrain, far=far, light=light)
    elif terrain in ("village", "castle") and far:
        base_x = w * (0.3 + 0.4 * rng.random())
        if terrain == "castle":
            _castle(draw, base_x, ground(base_x), size * 2.4, night)
        else:
            for i in range(7):
                x = base_x + (i - 3) * size * 1.6 + rng.random() * size * 0.4
                _house(draw, x, ground(x), size * (0.8 + 0.4 * rng.random()), rng, night)
    elif terrain == "village" and not far:
        for x in (w * 0.12, w * 0.88):
            _house(draw, x, ground(x), size * 0.9, rng, night, light=light)
    elif terrain == "desert" and not far:
        for _ in range(3):
            x = rng.random() * w
            _cactus(draw, x, ground(x), size, _scale((60, 120, 60), light))
    elif terrain == "ruins":
        for _ in range(5 if far else 3):
            x = rng.random() * w
            stone = _scale((170, 160, 140), light if not far else 0.9)
            _pillar(draw, x, ground(x), size, size * (1 + 1.5 * rng.random()), stone)
    elif terrain == "sea" and far:
        _ship(draw, w * (0.2 + 0.6 * rng.random()), h * 0.6, size)
    elif terrain in ("mountains", "tundra") and not far:
        for _ in range(4):
            x = rng.random() * w
            y = ground(x)
            rock = _scale((110, 110, 120) if terrain == "mountains" else (200, 210, 225), light)
            draw.ellipse(
                (x - size * 0.4, y - size * 0.35, x + size * 0.4, y + size * 0.1), fill=rock
            )


def _trees(
    draw: ImageDraw.ImageDraw, w: int, ground: Ground, size: float, rng: Rng, *, terrain: str,
    far: bool, light: float,
) -> None:  # fmt: skip
    for _ in range(40 if far and terrain == "forest" else 7):
        x = rng.random() * w
        if not far and w * 0.3 < x < w * 0.7:
            continue  # keep the middle free for the subject
        s = size * (0.6 + 0.8 * rng.random())
        green = _scale((30, 70 + int(rng.integers(40)), 40), light * (0.8 if far else 0.6))
        y = ground(x)
        if terrain == "swamp":  # a bare trunk with one branch
            trunk = _scale((50, 45, 35), light)
            draw.line((x, y, x, y - s * 2), fill=trunk, width=max(2, int(s / 8)))
            draw.line((x, y - s, x + s * 0.6, y - s * 1.6), fill=trunk, width=3)
            continue
        for tier in range(3):  # a fir of three stacked triangles
            top = y - s * (2.2 - tier * 0.5)
            half = s * (0.4 + tier * 0.2)
            draw.polygon(
                [(x, top), (x - half, top + s * 0.9), (x + half, top + s * 0.9)], fill=green
            )


def _cactus(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, green: RGB) -> None:
    for box, radius in (
        ((x - s * 0.1, y - s, x + s * 0.1, y), 8),
        ((x + s * 0.1, y - s * 0.6, x + s * 0.3, y - s * 0.5), 6),
        ((x + s * 0.2, y - s * 0.85, x + s * 0.3, y - s * 0.5), 6),
    ):
        draw.rounded_rectangle(box, radius, fill=green)


def _pillar(
    draw: ImageDraw.ImageDraw, x: float, y: float, s: float, tall: float, stone: RGB
) -> None:
    draw.rectangle((x - s * 0.15, y - tall, x + s * 0.15, y), fill=stone)
    draw.rectangle((x - s * 0.22, y - tall - s * 0.1, x + s * 0.22, y - tall), fill=stone)


def _ship(draw: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    hull = [(x - s, y), (x + s, y), (x + s * 0.7, y + s * 0.3), (x - s * 0.7, y + s * 0.3)]
    draw.polygon(hull, fill=(60, 40, 30))
    sail = [(x, y - s * 1.6), (x, y - s * 0.1), (x + s * 0.8, y - s * 0.2)]
    draw.polygon(sail, fill=(235, 230, 215))


def _house(
    draw: ImageDraw.ImageDraw, x: float, y: float, s: float, rng: Rng, night: bool,
    light: float = 1.0,
) -> None:  # fmt: skip
    wall = _scale((170 + int(rng.integers(40)), 140, 100), light)
    roof = _scale((130, 50 + int(rng.integers(30)), 40), light)
    draw.rectangle((x - s * 0.5, y - s * 0.8, x + s * 0.5, y), fill=wall)
    draw.polygon(
        [(x - s * 0.65, y - s * 0.8), (x, y - s * 1.4), (x + s * 0.65, y - s * 0.8)], fill=roof
    )
    window = (255, 200, 90) if night else _scale((60, 60, 80), light)
    draw.rectangle((x - s * 0.3, y - s * 0.6, x - s * 0.1, y - s * 0.4), fill=window)
    draw.rectangle((x + s * 0.1, y - s * 0.6, x + s * 0.3, y - s * 0.4), fill=window)
    draw.rectangle((x - s * 0.1, y - s * 0.35, x + s * 0.1, y), fill=_scale((70, 45, 30), light))


def _castle(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, night: bool) -> None:
    stone = (120, 118, 125)
    draw.rectangle((x - s, y - s * 0.8, x + s, y), fill=stone)
    for tx in (x - s, x - s * 0.3, x + s * 0.3, x + s):
        draw.rectangle((tx - s * 0.18, y - s * 1.4, tx + s * 0.18, y), fill=stone)
        draw.polygon(
            [(tx - s * 0.24, y - s * 1.4), (tx, y - s * 1.85), (tx + s * 0.24, y - s * 1.4)],
            fill=(90, 40, 50),
        )
        if night:
            draw.rectangle(
                (tx - s * 0.05, y - s * 1.1, tx + s * 0.05, y - s * 0.95), fill=(255, 200, 90)
            )
    for cx in np.arange(x - s, x + s, s * 0.2):
        draw.rectangle((cx, y - s * 0.9, cx + s * 0.1, y - s * 0.8), fill=stone)
    draw.rounded_rectangle((x - s * 0.15, y - s * 0.45, x + s * 0.15, y), 12, fill=(40, 30, 25))


def window(
    image: Image.Image, box: tuple[float, float, float, float], time: tuple[Any, ...]
) -> None:
    draw = ImageDraw.Draw(image)
    top, horizon = time[0], time[1]
    x0, y0, x1, y1 = (int(v) for v in box)
    for y in range(y0, y1):
        t = (y - y0) / max(1, y1 - y0)
        color = tuple(int(a * (1 - t) + b * t) for a, b in zip(top, horizon, strict=True))
        draw.line((x0, y, x1, y), fill=color)
    frame = (60, 38, 22)
    draw.rectangle(box, outline=frame, width=8)
    draw.line(((x0 + x1) / 2, y0, (x0 + x1) / 2, y1), fill=frame, width=6)
    draw.line((x0, (y0 + y1) / 2, x1, (y0 + y1) / 2), fill=frame, width=6)


def fire(image: Image.Image, x: float, y: float, s: float, rng: Rng, *, hearth: bool) -> None:
    glow = Image.new("L", image.size, 0)
    ImageDraw.Draw(glow).ellipse((x - s * 4, y - s * 4, x + s * 4, y + s * 2), fill=120)
    glow = glow.filter(ImageFilter.GaussianBlur(s * 1.5))
    image.paste(Image.new("RGB", image.size, (255, 150, 60)), mask=glow)
    draw = ImageDraw.Draw(image)
    if hearth:
        draw.rectangle((x - s * 1.4, y - s * 1.6, x + s * 1.4, y), fill=(70, 65, 65))
        draw.rectangle((x - s, y - s * 1.1, x + s, y), fill=(25, 15, 10))
    else:  # a torch on the wall
        draw.rectangle((x - s * 0.12, y, x + s * 0.12, y + s * 1.5), fill=(70, 45, 25))
    for color, k in (((255, 90, 20), 1.0), ((255, 170, 40), 0.7), ((255, 240, 150), 0.4)):
        for _ in range(3):
            fx = x + (rng.random() - 0.5) * s * 0.6 * k
            draw.polygon(
                [
                    (fx - s * 0.5 * k, y),
                    (fx, y - s * 1.3 * k * (0.8 + 0.4 * rng.random())),
                    (fx + s * 0.5 * k, y),
                ],
                fill=color,
            )


def table(image: Image.Image, x: float, y: float, rng: Rng) -> None:
    w, h = image.size
    s = min(w, h) * 0.09
    draw = ImageDraw.Draw(image)
    draw.rectangle((x - s * 0.08, y, x + s * 0.08, y + s * 0.7), fill=(60, 38, 20))
    draw.ellipse((x - s * 1.2, y - s * 0.3, x + s * 1.2, y + s * 0.3), fill=(120, 80, 45))
    for i in range(int(rng.integers(1, 4))):
        mx = x + (i - 1) * s * 0.6
        draw.rectangle(
            (mx - s * 0.12, y - s * 0.45, mx + s * 0.12, y - s * 0.05), fill=(190, 160, 90)
        )
        draw.rectangle(
            (mx - s * 0.12, y - s * 0.45, mx + s * 0.12, y - s * 0.38), fill=(250, 245, 230)
        )


# --- Characters --------------------------------------------------------------------------------

SKIN: dict[str, RGB] = {"goblin": (90, 150, 70), "skeleton": (225, 220, 200)}
# A wizard wears the accent colour.
CLOTHES: dict[str, RGB] = {
    "cleric": (230, 225, 210), "knight": (170, 175, 190), "rogue": (50, 45, 55),
    "ranger": (60, 95, 55), "dwarf": (120, 70, 40), "goblin": (100, 80, 50),
    "skeleton": (60, 55, 60),
}  # fmt: skip
STEEL: RGB = (220, 225, 235)


@dataclass(frozen=True)
class Figure:
    """Where a standing character is drawn: `x` its middle, `head_y` the top of its head,
    `foot` the ground line, `s` the unit every part is sized in, `k` the light factor."""

    draw: ImageDraw.ImageDraw
    x: float
    head_y: float
    foot: float
    s: float
    k: float
    robe: RGB
    skin: RGB
    accent: RGB


def character(image: Image.Image, words: frozenset[str], rng: Rng, *, light: float) -> Image.Image:
    kind = pick_keyword(
        words, CLASSES, rng, ["wizard", "knight", "rogue", "ranger", "cleric", "dwarf"]
    )
    w, h = image.size
    s = min(w, h) * 0.3
    x, foot = w / 2, h * 0.93
    k = 0.55 + 0.45 * light
    draw = ImageDraw.Draw(image)
    accent = _scale(accent_color(words, rng), k)
    if kind == "dragon":
        _dragon(draw, x, foot, s, _scale((150, 40, 40) if "red" in words else (50, 110, 60), k))
        return image
    robe = _scale(accent if kind == "wizard" else CLOTHES[kind], k)
    skin = _scale(SKIN.get(kind, (225, 180, 145)), k)
    head_y = foot - s * 2.1 * (0.75 if kind in ("dwarf", "goblin") else 1.0)
    body = [
        (x - s * 0.45, foot), (x - s * 0.3, head_y + s * 0.3), (x + s * 0.3, head_y + s * 0.3),
        (x + s * 0.45, foot),
    ]  # fmt: skip
    draw.polygon(body, fill=robe)
    draw.ellipse((x - s * 0.2, head_y - s * 0.1, x + s * 0.2, head_y + s * 0.32), fill=skin)
    figure = Figure(draw, x, head_y, foot, s, k, robe, skin, accent)
    if kind == "wizard":
        _wizard_gear(figure, accent_color(words, rng))
    elif kind in _GEAR:
        _GEAR[kind](figure)
    eye = (255, 60, 40) if kind == "skeleton" else (30, 25, 25)
    for ex in (x - s * 0.07, x + s * 0.07):
        draw.ellipse(
            (ex - s * 0.025, head_y + s * 0.08, ex + s * 0.025, head_y + s * 0.13), fill=eye
        )
    return image


def _dragon(draw: ImageDraw.ImageDraw, x: float, foot: float, s: float, body: RGB) -> None:
    for side in (-1, 1):  # the wings
        wing = [
            (x + side * s * 2, foot - s * 2.2), (x + side * s * 0.3, foot - s * 1.2),
            (x + side * s * 1.6, foot - s * 1.1),
        ]  # fmt: skip
        draw.polygon(wing, fill=_scale(body, 0.8))
    draw.ellipse((x - s * 0.7, foot - s * 1.4, x + s * 0.7, foot - s * 0.3), fill=body)
    draw.line((x, foot - s * 1.2, x + s * 0.5, foot - s * 2.0), fill=body, width=int(s * 0.25))
    draw.ellipse((x + s * 0.3, foot - s * 2.3, x + s * 0.9, foot - s * 1.9), fill=body)
    draw.ellipse((x + s * 0.65, foot - s * 2.2, x + s * 0.75, foot - s * 2.1), fill=(255, 220, 60))


def _wizard_gear(f: Figure, orb: RGB) -> None:
    x, y, s = f.x, f.head_y, f.s
    f.draw.polygon(
        [(x - s * 0.35, y), (x + s * 0.05, y - s * 0.75), (x + s * 0.35, y)], fill=f.robe
    )
    staff = _scale((110, 70, 40), f.k)
    f.draw.line((x + s * 0.6, f.foot, x + s * 0.6, y - s * 0.3), fill=staff, width=int(s * 0.06))
    f.draw.ellipse((x + s * 0.5, y - s * 0.45, x + s * 0.7, y - s * 0.25), fill=orb)


def _knight_gear(f: Figure) -> None:
    x, y, s = f.x, f.head_y, f.s
    f.draw.chord((x - s * 0.22, y - s * 0.15, x + s * 0.22, y + s * 0.35), 180, 360, fill=f.robe)
    shield = [
        (x - s * 0.9, y + s * 0.6), (x - s * 0.4, y + s * 0.6), (x - s * 0.45, y + s * 1.2),
        (x - s * 0.65, y + s * 1.4), (x - s * 0.85, y + s * 1.2),
    ]  # fmt: skip
    f.draw.polygon(shield, fill=f.accent)
    sword = (x + s * 0.5, y + s * 1.2, x + s * 0.8, y - s * 0.2)
    f.draw.line(sword, fill=_scale(STEEL, f.k), width=int(s * 0.07))


def _hood(f: Figure) -> None:
    x, y, s = f.x, f.head_y, f.s
    f.draw.chord((x - s * 0.26, y - s * 0.2, x + s * 0.26, y + s * 0.5), 180, 360, fill=f.robe)


def _ranger_gear(f: Figure) -> None:
    _hood(f)
    x, y, s = f.x, f.head_y, f.s
    bow = (x + s * 0.3, y, x + s * 0.9, y + s * 1.6)
    f.draw.arc(bow, -80, 80, fill=_scale((130, 85, 45), f.k), width=int(s * 0.05))


def _rogue_gear(f: Figure) -> None:
    _hood(f)
    x, y, s = f.x, f.head_y, f.s
    dagger = (x + s * 0.45, y + s * 1.1, x + s * 0.7, y + s * 0.8)
    f.draw.line(dagger, fill=_scale(STEEL, f.k), width=int(s * 0.04))


def _dwarf_gear(f: Figure) -> None:
    x, y, s = f.x, f.head_y, f.s
    beard = [(x - s * 0.18, y + s * 0.2), (x, y + s * 0.75), (x + s * 0.18, y + s * 0.2)]
    f.draw.polygon(beard, fill=_scale((170, 90, 40), f.k))
    haft = (x + s * 0.5, f.foot, x + s * 0.5, y + s * 0.2)
    f.draw.line(haft, fill=_scale((100, 65, 35), f.k), width=int(s * 0.06))
    blade = (x + s * 0.3, y + s * 0.05, x + s * 0.8, y + s * 0.45)
    f.draw.chord(blade, -90, 90, fill=_scale((200, 205, 215), f.k))


def _goblin_gear(f: Figure) -> None:
    x, y, s = f.x, f.head_y, f.s
    for side in (-1, 1):  # the ears
        ear = [
            (x + side * s * 0.18, y + s * 0.1), (x + side * s * 0.5, y - s * 0.05),
            (x + side * s * 0.2, y + s * 0.2),
        ]  # fmt: skip
        f.draw.polygon(ear, fill=f.skin)


def _cleric_gear(f: Figure) -> None:
    x, y, s = f.x, f.head_y, f.s
    gold = (240, 200, 80)
    f.draw.rectangle((x - s * 0.03, y + s * 0.6, x + s * 0.03, y + s * 1.0), fill=gold)
    f.draw.rectangle((x - s * 0.13, y + s * 0.7, x + s * 0.13, y + s * 0.76), fill=gold)


_GEAR: dict[str, Callable[[Figure], None]] = {
    "knight": _knight_gear, "rogue": _rogue_gear, "ranger": _ranger_gear,
    "dwarf": _dwarf_gear, "goblin": _goblin_gear, "cleric": _cleric_gear,
}  # fmt: skip
