"""The offline image provider's painter: a scene composed from the prompt's keywords.

Time of day picks the sky and light, weather adds clouds, rain, snow, fog or lightning,
terrain picks the landforms and buildings, and the subject type decides what stands in
front: an item on a glowing backdrop (the item the prompt names first), a character in a
landscape, or just the scene. A "scene" request that describes an item or a portrait (as
the game sends them) is painted as one (`subject_of`).
Everything random comes from one seed, so a prompt and seed always give the same picture.
Blocking (numpy + Pillow): run it in a thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from worldbase.apps.dnd import item_shapes, shapes

RGB = tuple[int, int, int]

TIMES: dict[str, tuple[RGB, RGB, float, RGB]] = {
    # name: sky top, sky horizon, light level, light tint
    "dawn": ((70, 80, 140), (250, 170, 120), 0.8, (255, 200, 170)),
    "morning": ((90, 150, 220), (200, 225, 245), 0.95, (255, 245, 225)),
    "day": ((60, 130, 220), (175, 215, 245), 1.0, (255, 255, 250)),
    "afternoon": ((80, 135, 205), (235, 215, 170), 0.95, (255, 235, 200)),
    "dusk": ((45, 40, 95), (245, 120, 70), 0.7, (255, 170, 120)),
    "night": ((8, 10, 30), (30, 40, 80), 0.38, (150, 170, 255)),
}
TIME_WORDS = {
    "dawn": "dawn", "sunrise": "dawn", "daybreak": "dawn", "morning": "morning",
    "noon": "day", "midday": "day", "day": "day", "daytime": "day", "afternoon": "afternoon",
    "dusk": "dusk", "sunset": "dusk", "evening": "dusk", "twilight": "dusk", "night": "night",
    "midnight": "night", "nighttime": "night", "moonlit": "night", "moon": "night",
}  # fmt: skip
WEATHER_WORDS = {
    "rain": "rain", "rainy": "rain", "drizzle": "rain", "shower": "rain", "downpour": "rain",
    "storm": "storm", "stormy": "storm", "thunder": "storm", "thunderstorm": "storm",
    "lightning": "storm", "snow": "snow", "snowy": "snow", "blizzard": "snow", "snowfall": "snow",
    "fog": "fog", "foggy": "fog", "mist": "fog", "misty": "fog", "haze": "fog",
    "cloud": "cloudy", "cloudy": "cloudy", "overcast": "cloudy", "clear": "clear",
    "sunny": "clear",
}  # fmt: skip
TERRAIN_WORDS = {
    "forest": "forest", "woods": "forest", "wood": "forest", "grove": "forest",
    "jungle": "forest", "mountain": "mountains", "mountains": "mountains", "peak": "mountains",
    "cliff": "mountains", "hills": "mountains", "hill": "mountains", "desert": "desert",
    "dune": "desert", "dunes": "desert", "sand": "desert", "sea": "sea", "ocean": "sea",
    "coast": "sea", "beach": "sea", "harbor": "sea", "harbour": "sea", "port": "sea",
    "shore": "sea", "lake": "sea", "river": "sea", "swamp": "swamp", "marsh": "swamp",
    "bog": "swamp", "tavern": "tavern", "inn": "tavern", "pub": "tavern", "dungeon": "dungeon",
    "cave": "dungeon", "cavern": "dungeon", "crypt": "dungeon", "tomb": "dungeon",
    "mine": "dungeon", "castle": "castle", "keep": "castle", "fortress": "castle",
    "citadel": "castle", "palace": "castle", "village": "village", "town": "village",
    "city": "village", "market": "village", "hamlet": "village", "plains": "plains",
    "field": "plains", "meadow": "plains", "farm": "plains", "grassland": "plains",
    "tundra": "tundra", "glacier": "tundra", "ice": "tundra", "frozen": "tundra",
    "ruins": "ruins", "ruin": "ruins", "temple": "ruins", "shrine": "ruins",
}  # fmt: skip
GROUND: dict[str, RGB] = {
    "forest": (40, 85, 45), "mountains": (95, 95, 105), "desert": (210, 175, 110),
    "sea": (70, 110, 80), "swamp": (60, 75, 50), "castle": (80, 110, 70),
    "village": (95, 125, 70), "plains": (105, 150, 75), "tundra": (215, 225, 235),
    "ruins": (130, 120, 95),
}  # fmt: skip


@dataclass(frozen=True)
class Scene:
    time: str
    weather: str
    terrain: str
    words: frozenset[str]
    ordered: tuple[str, ...] = ()  # the words in text order (the subject's name first)


def ordered_words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z]+", text.lower()))


def words_of(text: str) -> frozenset[str]:
    return frozenset(ordered_words(text))


def _first_index(words: tuple[str, ...], table: dict[str, str]) -> int | None:
    return next((i for i, w in enumerate(words) if w in table), None)


def subject_of(text: str, subject_type: str) -> str:
    """What to paint. The game asks for items and portraits as "scene"s too (its
    generateItemImage sends "Dagger, detailed item illustration ..."): a scene request is
    an item when it says "item" or starts with an item's name, unless a place is named
    before any item; it is a character when it says "portrait"."""
    if subject_type != "scene":
        return subject_type
    words = ordered_words(text)
    cue = bool({"item", "items"} & set(words)) or (bool(words) and words[0] in item_shapes.ITEMS)
    if cue:
        place = _first_index(words, TERRAIN_WORDS)
        thing = _first_index(words, item_shapes.ITEMS)
        if place is None or (thing is not None and thing < place):
            return "item"
    return "character" if "portrait" in words else "scene"


def read_scene(text: str, rng: np.random.Generator) -> Scene:
    """Keywords of the prompt; what it does not say is chosen by the seed."""
    words = words_of(text)
    time = shapes.pick_keyword(words, TIME_WORDS, rng, ["morning", "day", "afternoon", "dusk"])
    weather = shapes.pick_keyword(words, WEATHER_WORDS, rng, ["clear", "clear", "cloudy"])
    terrains = ["forest", "mountains", "plains", "village", "sea"]
    terrain = shapes.pick_keyword(words, TERRAIN_WORDS, rng, terrains)
    return Scene(time, weather, terrain, words, ordered_words(text))


def render(*, text: str, subject_type: str, width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    scene = read_scene(text, rng)
    subject_type = subject_of(text, subject_type)
    if subject_type == "item":
        return _item(scene, width, height, rng)
    if scene.terrain in ("tavern", "dungeon"):
        image = _interior(scene, width, height, rng)
    else:
        image = _outdoor(scene, width, height, rng)
    if subject_type == "character":
        image = shapes.character(image, scene.words, rng, light=TIMES[scene.time][2])
    image = _weather(image, scene, rng, indoor=scene.terrain in ("tavern", "dungeon"))
    return _finish(image, rng)


# --- Sky and land ---------------------------------------------------------------------------


def _gradient(top: RGB, bottom: RGB, height: int, width: int, end: float = 1.0) -> np.ndarray:
    t = np.clip(np.linspace(0.0, 1.0 / end, height), 0, 1)[:, None, None]
    column = np.array(top, float) * (1 - t) + np.array(bottom, float) * t
    return np.broadcast_to(column, (height, width, 3)).copy()


def _ridge(
    width: int, base: float, amp: float, rng: np.random.Generator, rough: float
) -> np.ndarray:
    x = np.linspace(0, 1, width)
    y = np.full(width, base)
    for octave in range(5):
        freq = (octave + 1) * rough * (1 + rng.random())
        y += amp / (octave + 1) ** 1.3 * np.sin(2 * np.pi * freq * x + rng.random() * 6.28)
    return y


def _outdoor(scene: Scene, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    top, horizon, light, tint = TIMES[scene.time]
    if scene.weather in ("cloudy", "rain", "storm", "snow", "fog"):
        grey = 95 if scene.weather == "storm" else 150
        top = _mix(top, (grey, grey, grey + 10), 0.6)
        horizon = _mix(horizon, (grey + 30, grey + 30, grey + 30), 0.6)
    sky = _gradient(top, horizon, height, width, end=0.62)
    image = Image.fromarray(sky.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    if scene.time == "night" and scene.weather in ("clear", "fog"):
        for _ in range(int(width * height / 2500)):
            x, y = rng.random() * width, rng.random() * height * 0.6
            b = int(150 + rng.random() * 105)
            draw.point((x, y), fill=(b, b, b))
    _sun_or_moon(image, scene, rng)
    if scene.weather != "clear" or rng.random() < 0.5:
        _clouds(image, scene, rng)

    arr = np.asarray(image, dtype=float).copy()
    ground = GROUND.get(scene.terrain, (90, 120, 70))
    haze = np.array(horizon, float)
    yy = np.arange(height)[:, None]
    layers = 4
    night = scene.time in ("night", "dusk")
    # Far layers are faint (blended into the horizon), near ones dark and saturated.
    for i in range(layers):
        depth = i / (layers - 1)
        base = height * (0.5 + 0.13 * i)
        amp = height * (0.12 if scene.terrain == "mountains" and i < 2 else 0.035)
        rough = 2.5 if scene.terrain == "mountains" else 1.0
        line = _ridge(width, base, amp, rng, rough)
        if scene.terrain == "sea" and i >= 1:
            line = np.full(width, height * 0.6 + i * 2.0)
        color = np.array(ground, float) * (0.55 + 0.45 * depth)
        if scene.terrain == "sea" and i >= 1:
            color = np.array(_mix(horizon, (20, 60, 110), 0.5 + 0.15 * i), float)
        if scene.terrain == "mountains" and i == 0:
            color = np.array((150, 150, 170), float)
        color = color * (1 - 0.6 * (1 - depth)) + haze * 0.6 * (1 - depth)
        mask = yy >= line[None, :]
        shade = 1 - 0.25 * np.clip((yy - line[None, :]) / height, 0, 1)
        fill = color[None, None, :] * shade[..., None]
        arr = np.where(mask[..., None], fill, arr)
        if i == 1:
            image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
            shapes.landmarks(image, scene.terrain, line, rng, far=True, light=1.0, night=night)
            arr = np.asarray(image, dtype=float).copy()
    # Daylight and its colour act on the land; the sky already has its own.
    arr = arr * (np.array(tint, float) / 255) * (0.55 + 0.45 * light)
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    near = np.full(width, height * 0.9)
    shapes.landmarks(image, scene.terrain, near, rng, far=False, light=light, night=night)
    if scene.terrain == "sea":
        _reflections(image, scene, rng)
    return image


def _sun_or_moon(image: Image.Image, scene: Scene, rng: np.random.Generator) -> None:
    if scene.weather in ("storm", "rain") and scene.time != "night":
        return
    w, h = image.size
    x = w * (0.15 + 0.7 * rng.random())
    y = h * {"dawn": 0.45, "dusk": 0.42, "morning": 0.25, "afternoon": 0.25}.get(scene.time, 0.15)
    r = min(w, h) * (0.05 if scene.time == "night" else 0.07)
    color = {"night": (235, 235, 215), "dawn": (255, 200, 140), "dusk": (255, 150, 90)}.get(
        scene.time, (255, 245, 210)
    )
    glow = Image.new("L", image.size, 0)
    ImageDraw.Draw(glow).ellipse((x - r * 3, y - r * 3, x + r * 3, y + r * 3), fill=110)
    glow = glow.filter(ImageFilter.GaussianBlur(r * 1.5))
    image.paste(Image.new("RGB", image.size, color), mask=glow)
    draw = ImageDraw.Draw(image)
    draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    if scene.time == "night":  # crescent
        sky = image.getpixel((int(max(0, x - r * 2)), int(y)))
        draw.ellipse((x - r * 0.5, y - r * 1.1, x + r * 1.5, y + r * 0.9), fill=sky)


def _clouds(image: Image.Image, scene: Scene, rng: np.random.Generator) -> None:
    w, h = image.size
    count = {"clear": 3, "cloudy": 9, "fog": 6}.get(scene.weather, 12)
    mask = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(count):
        cx, cy = rng.random() * w, h * (0.05 + 0.35 * rng.random())
        for _ in range(6):
            rx, ry = w * (0.04 + 0.06 * rng.random()), h * (0.02 + 0.04 * rng.random())
            ox, oy = (rng.random() - 0.5) * w * 0.12, (rng.random() - 0.5) * h * 0.04
            draw.ellipse((cx + ox - rx, cy + oy - ry, cx + ox + rx, cy + oy + ry), fill=200)
    mask = mask.filter(ImageFilter.GaussianBlur(min(w, h) * 0.015))
    light = TIMES[scene.time][2]
    shade = int(255 * light) if scene.weather != "storm" else int(110 * light)
    color = _mix((shade, shade, shade), TIMES[scene.time][1], 0.25)
    image.paste(Image.new("RGB", image.size, color), mask=mask)


def _reflections(image: Image.Image, scene: Scene, rng: np.random.Generator) -> None:
    w, h = image.size
    draw = ImageDraw.Draw(image)
    glint = _mix(TIMES[scene.time][1], (255, 255, 255), 0.4)
    for _ in range(int(w / 6)):
        x, y = rng.random() * w, h * (0.62 + 0.38 * rng.random())
        length = w * 0.01 * (1 + rng.random() * 3) * (y / h)
        draw.line((x, y, x + length, y), fill=glint, width=1)


def _interior(scene: Scene, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    tavern = scene.terrain == "tavern"
    wall: RGB = (105, 68, 40) if tavern else (72, 70, 78)
    image = Image.fromarray(
        _gradient(_mix(wall, (0, 0, 0), 0.5), wall, height, width).astype(np.uint8)
    )
    draw = ImageDraw.Draw(image)
    floor_y = height * 0.72
    if tavern:
        for x in np.arange(0, width, width / 14):  # planks
            draw.line((x, 0, x, floor_y), fill=_mix(wall, (0, 0, 0), 0.35), width=3)
        shapes.window(
            image, (width * 0.08, height * 0.18, width * 0.28, height * 0.45), TIMES[scene.time]
        )
    else:
        brick_h = height / 18
        for row, y in enumerate(np.arange(0, floor_y, brick_h)):
            offset = (row % 2) * width / 24
            for x in np.arange(-offset, width, width / 12):
                jitter = int(rng.integers(-12, 12))
                fill = tuple(int(c + jitter) for c in wall)
                draw.rectangle((x + 2, y + 2, x + width / 12 - 2, y + brick_h - 2), fill=fill)
        draw.ellipse((width * 0.4, height * 0.25, width * 0.6, height * 0.55), fill=(12, 10, 14))
        draw.rectangle((width * 0.4, height * 0.4, width * 0.6, floor_y), fill=(12, 10, 14))
    floor = _mix(wall, (30, 20, 10), 0.5)
    draw.rectangle((0, floor_y, width, height), fill=floor)
    for i in range(1, 10):  # floor boards in perspective
        x = width * i / 10
        draw.line(
            (x, floor_y, width / 2 + (x - width / 2) * 2.2, height),
            fill=_mix(floor, (0, 0, 0), 0.3),
            width=2,
        )
    fires = (
        [(width * 0.78, floor_y)]
        if tavern
        else [(width * 0.2, height * 0.4), (width * 0.8, height * 0.4)]
    )
    for fx, fy in fires:
        shapes.fire(
            image, fx, fy, min(width, height) * (0.12 if tavern else 0.05), rng, hearth=tavern
        )
    if tavern:
        for _ in range(3):
            shapes.table(
                image, width * (0.2 + 0.55 * rng.random()), height * (0.8 + 0.1 * rng.random()), rng
            )
    return image


# --- Weather and finish ------------------------------------------------------------------------


def _weather(
    image: Image.Image, scene: Scene, rng: np.random.Generator, *, indoor: bool
) -> Image.Image:
    if indoor:
        return image
    w, h = image.size
    draw = ImageDraw.Draw(image, "RGBA")
    if scene.weather in ("rain", "storm"):
        drops = int(w * h / (900 if scene.weather == "storm" else 1500))
        for _ in range(drops):
            x, y = rng.random() * w, rng.random() * h
            length = h * (0.02 + 0.03 * rng.random())
            draw.line((x, y, x - length * 0.25, y + length), fill=(200, 210, 230, 110), width=1)
    if scene.weather == "storm":
        x, y = w * (0.2 + 0.6 * rng.random()), 0.0
        points = [(x, y)]
        while y < h * 0.6:
            x += (rng.random() - 0.5) * w * 0.06
            y += h * (0.03 + 0.04 * rng.random())
            points.append((x, y))
        draw.line(points, fill=(255, 255, 235, 255), width=3)
    if scene.weather == "snow":
        for _ in range(int(w * h / 1200)):
            x, y, r = rng.random() * w, rng.random() * h, 1 + rng.random() * 2.5
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(250, 250, 255, 220))
    if scene.weather == "fog":
        arr = np.asarray(image, dtype=float)
        t = np.linspace(0.15, 0.65, h)[:, None, None]
        arr = arr * (1 - t) + np.array((200, 205, 210), float) * t
        return Image.fromarray(arr.astype(np.uint8))
    return image


def _finish(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Vignette and a little grain, so flat fills read as paint."""
    w, h = image.size
    arr = np.asarray(image, dtype=np.float32)
    yy, xx = np.ogrid[-1 : 1 : complex(0, h), -1 : 1 : complex(0, w)]
    vignette = 1 - 0.35 * np.clip(xx**2 * 0.6 + yy**2 * 0.8, 0, 1)
    grain = rng.standard_normal((h, w, 1), dtype=np.float32) * 4
    shaded = arr * vignette[..., None].astype(np.float32) + grain
    return Image.fromarray(np.clip(shaded, 0, 255).astype(np.uint8))


def _item(scene: Scene, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    accent = shapes.accent_color(scene.words, rng)
    yy, xx = np.ogrid[-1 : 1 : complex(0, height), -1 : 1 : complex(0, width)]
    # A radial glow from the accent colour at the centre to near-black at the edges.
    t = np.clip(np.sqrt(xx**2 * (width / height) ** 0.5 + yy**2), 0, 1).astype(np.float32)
    center, edge = _mix(accent, (20, 18, 28), 0.55), (10, 8, 16)
    channels = [
        Image.fromarray((c + (e - c) * t).astype(np.uint8))
        for c, e in zip(center, edge, strict=True)
    ]
    image = Image.merge("RGB", channels)
    item_shapes.item(image, scene.ordered, accent, rng)
    return _finish(image, rng)


def _mix(a: RGB | tuple[int, ...], b: RGB | tuple[int, ...], t: float) -> RGB:
    return (
        int(a[0] * (1 - t) + b[0] * t),
        int(a[1] * (1 - t) + b[1] * t),
        int(a[2] * (1 - t) + b[2] * t),
    )
