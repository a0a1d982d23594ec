"""Reading the game's LocalStorage in the shapes it is sent: the seed's structured body, the
flat keys as they sit in `localStorage`, and the game's own library keys.

- seed 002's body: `{"scene_cache": {"scene_cache_<Loc>_<Time>_<Weather>": {image}},
  "item_images": {"item_image_<Name>": {"images": [{image, custom_prompt, is_featured}]}}}`;
- a raw dump (`JSON.stringify({...localStorage})`): the same `scene_cache_*` / `item_image_*`
  keys at the top level, each value the JSON *text* LocalStorage holds (or the object);
- the AI-DnD game's own keys (retro-adventure-game.html): `nanoBananaSceneCache`
  (`{"scene_<loc>_<time>_<weather>": {location, timeOfDay, weather, imageData, prompt}}`)
  and `nanoBananaImageLibrary` (`{<item>: {featured: <id>, images: [{id, data, customPrompt}]}}`).

Everything else (saves, themes, settings) is listed in `ignored`, so a dump that holds
nothing usable says so instead of answering "0 migrated".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from worldbase.core.errors import BadInput

SCENE_PREFIX = "scene_cache_"
ITEM_PREFIX = "item_image_"
GAME_SCENES = "nanoBananaSceneCache"
GAME_LIBRARY = "nanoBananaImageLibrary"
_IMAGE_FIELDS = ("image", "imageData", "data")


@dataclass(frozen=True)
class SceneEntry:
    key: str  # as reported back
    value: Any  # {image, ...}
    # (location, time, weather) when the entry names them; else parsed from `key`.
    names: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class ItemEntry:
    key: str
    value: Any  # {images: [...]}
    name: str | None = None  # else parsed from `key`


@dataclass
class Entries:
    scenes: list[SceneEntry] = field(default_factory=list)
    items: list[ItemEntry] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.scenes) + len(self.items)


def _text_value(value: Any) -> Any:
    """LocalStorage holds strings: JSON text is decoded, anything else is left as it is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            raise BadInput("value is not valid JSON") from None
    return value


def image_of(value: dict[str, Any]) -> Any:
    return next((value[f] for f in _IMAGE_FIELDS if value.get(f) is not None), None)


def _scene_value(value: Any) -> Any:
    value = _text_value(value)
    if isinstance(value, str):  # the image itself (a data URL or base64)
        return {"image": value}
    return value


def _item_value(value: Any) -> Any:
    value = _text_value(value)
    if isinstance(value, str):
        return {"images": [{"image": value}]}
    if isinstance(value, list):
        return {"images": value}
    if isinstance(value, dict) and "images" not in value and image_of(value) is not None:
        return {"images": [value]}
    return value


def item_image(entry: Any, featured_id: Any = None) -> Any:
    """One image entry in the seed's shape, from the seed's or the game's field names."""
    if not isinstance(entry, dict):
        return entry
    custom = entry.get("custom_prompt", entry.get("customPrompt"))
    featured = entry.get("is_featured")
    if featured is None:
        featured = featured_id is not None and entry.get("id") == featured_id
    return {"image": image_of(entry), "custom_prompt": custom or None, "is_featured": featured}


def _game_scenes(entries: Entries, key: str, value: Any) -> None:
    cache = _text_value(value)
    if not isinstance(cache, dict):
        raise BadInput("must be an object of cached scenes")
    for scene_key, scene in cache.items():
        report_key = f"{key}/{scene_key}"
        if not isinstance(scene, dict):
            entries.errors.append({"key": report_key, "error": "scene entry must be an object"})
            continue
        names = (
            scene.get("location"),
            scene.get("timeOfDay", "day"),
            scene.get("weather", "clear"),
        )
        if not all(isinstance(n, str) and n.strip() for n in names):
            entries.errors.append(
                {"key": report_key, "error": "scene needs location, timeOfDay and weather"}
            )
            continue
        entries.scenes.append(SceneEntry(report_key, scene, names))  # type: ignore[arg-type]


def _game_library(entries: Entries, key: str, value: Any) -> None:
    library = _text_value(value)
    if not isinstance(library, dict):
        raise BadInput("must be an object of items")
    for name, item in library.items():
        report_key = f"{key}/{name}"
        if not isinstance(item, dict) or not isinstance(item.get("images"), list):
            entries.errors.append({"key": report_key, "error": "item must be {images: [...]}"})
            continue
        images = [item_image(entry, item.get("featured")) for entry in item["images"]]
        entries.items.append(ItemEntry(report_key, {"images": images}, name))


def read_dump(body: dict[str, Any]) -> Entries:
    """Sort a dump's keys into scenes, items, per-key errors and ignored keys."""
    entries = Entries()
    for key, value in body.items():
        try:
            if key == "scene_cache":
                if not isinstance(value, dict):
                    raise BadInput("scene_cache must be an object")
                for k, v in value.items():
                    entries.scenes.append(SceneEntry(k, _scene_value(v)))
            elif key == "item_images":
                if not isinstance(value, dict):
                    raise BadInput("item_images must be an object")
                for k, v in value.items():
                    entries.items.append(ItemEntry(k, _item_value(v)))
            elif key.startswith(SCENE_PREFIX):
                entries.scenes.append(SceneEntry(key, _scene_value(value)))
            elif key.startswith(ITEM_PREFIX):
                entries.items.append(ItemEntry(key, _item_value(value)))
            elif key == GAME_SCENES:
                _game_scenes(entries, key, value)
            elif key == GAME_LIBRARY:
                _game_library(entries, key, value)
            else:
                entries.ignored.append({"key": key[:200], "error": "not a scene or item image key"})
        except BadInput as exc:
            entries.errors.append({"key": key[:200], "error": exc.message})
    return entries
