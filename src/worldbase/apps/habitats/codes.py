"""IUCN habitat codes: validation, the raster class they map to, default colours.

The habitat raster stores IUCN Habitats Classification Scheme codes as integers: level-1
class times 100 plus the level-2 class ("1.4" Temperate forest -> 104, "14.1" Arable land
-> 1401). A code may also be given in that integer form ("104"). Level-3 codes ("9.8.1")
are valid codes but have no integer form: such habitats need an explicit `raster_value`
or a vector geometry.
"""

from __future__ import annotations

import re

from worldbase.core.errors import BadInput

MAX_RASTER_VALUE = 65535  # uint16 rasters
_DOTTED = re.compile(r"(?P<major>[0-9]{1,2})(?:\.(?P<minor>[0-9]{1,2})(?:\.[0-9]{1,2})?)?")
_INTEGER = re.compile(r"[0-9]{3,5}")
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")

# IUCN level-1 classes 1..18 and a colour for each (used when a habitat gives none).
LEVEL1_COLORS: dict[int, str] = {
    1: "#1B7837",  # Forest
    2: "#D9B44A",  # Savanna
    3: "#8C6D31",  # Shrubland
    4: "#A6D96A",  # Grassland
    5: "#2C7FB8",  # Wetlands (inland)
    6: "#BDBDBD",  # Rocky areas
    7: "#636363",  # Caves and subterranean habitats
    8: "#F4E1A1",  # Desert
    9: "#6BAED6",  # Marine neritic
    10: "#08519C",  # Marine oceanic
    11: "#08306B",  # Marine deep ocean floor
    12: "#9ECAE1",  # Marine intertidal
    13: "#C6DBEF",  # Marine coastal/supratidal
    14: "#E34A33",  # Artificial - terrestrial
    15: "#FC8D59",  # Artificial - aquatic
    16: "#969696",  # Introduced vegetation
    17: "#D9D9D9",  # Other
    18: "#F0F0F0",  # Unknown
}


def normalize_code(code: str) -> str:
    """The code, stripped; `BadInput` unless it is an IUCN code ("1.4", "14.1", "104")."""
    text = str(code).strip()
    match = _DOTTED.fullmatch(text)
    if match and 1 <= int(match["major"]) <= 18:
        return text
    if _INTEGER.fullmatch(text) and 100 <= int(text) <= 1899 and 1 <= int(text) // 100 <= 18:
        return text
    raise BadInput(
        f"{code!r} is not an IUCN habitat code (like '1.4', '14.1' or '104')",
        detail={"reason": "bad iucn_code", "iucn_code": str(code)[:60]},
    )


def raster_value_of(code: str) -> int | None:
    """The raster class of an IUCN code, or None for level-3 codes."""
    text = normalize_code(code)
    if _INTEGER.fullmatch(text):
        return int(text)
    parts = text.split(".")
    if len(parts) > 2:
        return None
    minor = int(parts[1]) if len(parts) == 2 else 0
    return int(parts[0]) * 100 + minor


def level1_of(code: str) -> int:
    text = normalize_code(code)
    return int(text) // 100 if _INTEGER.fullmatch(text) else int(text.split(".")[0])


def default_color(code: str) -> str:
    return LEVEL1_COLORS.get(level1_of(code), "#808080")


def normalize_color(value: str) -> str:
    """`#RRGGBB` in upper case; `BadInput` otherwise."""
    text = str(value).strip()
    if not _COLOR.fullmatch(text):
        raise BadInput(
            f"{value!r} is not a colour of the form #RRGGBB",
            detail={"reason": "bad color_hex", "color_hex": str(value)[:20]},
        )
    return text.upper()


def rgba(color_hex: str) -> tuple[int, int, int, int]:
    text = normalize_color(color_hex)
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16), 255
