"""POST /api/v1/migrate/from-localstorage: good entries migrate, bad ones are reported,
a second run creates nothing, and the route accepts more than the default body limit."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

from fastapi.testclient import TestClient
from PIL import Image

from tests.apps.dnd.conftest import reset_app, stored_keys
from tests.bombs import jpeg_bomb, png_bomb, webp_bomb
from tests.builders import assert_error
from worldbase.settings import Settings

URL = "/api/v1/migrate/from-localstorage"


def _png(color: tuple[int, int, int], size: tuple[int, int] = (64, 36)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _noise_png() -> str:
    import numpy as np

    pixels = np.random.default_rng(7).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _dump() -> dict:  # type: ignore[type-arg]
    return {
        "scene_cache": {
            "scene_cache_Tavern_Evening_Light_Rain": {
                "image": "data:image/png;base64," + _png((120, 60, 20)),
                "timestamp": "2025-10-20T18:00:00Z",
            },
            "scene_cache_Forest_Night_Clear": {"image": _png((10, 40, 10))},
            "scene_cache_Broken": {"image": _png((1, 2, 3))},
            "scene_cache_Cave_Night_Fog": {"image": "!!!not base64!!!"},
        },
        "item_images": {
            "item_image_Healing Potion": {
                "images": [
                    {
                        "image": _png((200, 0, 0), (32, 32)),
                        "custom_prompt": None,
                        "is_featured": True,
                    },
                    {"image": base64.b64encode(b"plain text, no image").decode()},
                    {"image": _png((0, 0, 200), (32, 32)), "custom_prompt": "<script>x</script>"},
                ]
            },
            "item_image_Rope": {"images": [{"image": _noise_png()}]},
            "item_image_<b>": {"images": []},
            "item_image_Shield": "not an object",
        },
    }


def test_migrates_good_entries_and_reports_bad_ones_then_is_idempotent(client: TestClient) -> None:
    response = client.post(URL, json=_dump())
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["scenes"], report["items"], report["skipped"]) == (2, 2, 0)
    errors = {(e["key"], e["error"].split(":")[0]) for e in report["errors"]}
    assert {key for key, _ in errors} == {
        "scene_cache_Broken",
        "scene_cache_Cave_Night_Fog",
        "item_image_Healing Potion",
        "item_image_<b>",
        "item_image_Shield",
    }
    assert len(report["errors"]) == 6
    assert report["status"] == "partial" and report["ignored"] == []
    assert 0.18 < report["total_size_mb"] < 0.2  # the decoded originals (noise PNG: 197 kB)

    scene = client.post(
        "/api/v1/scenes/generate",
        params={"location": "Tavern", "time_of_day": "Evening", "weather": "Light_Rain"},
    ).json()
    assert scene["cached"] is True and scene["image"]["provider"] == "localstorage"
    potions = client.get("/api/v1/images/search", params={"subject_name": "Healing Potion"})
    assert [i["is_featured"] for i in potions.json()["items"]] == [True]
    files = stored_keys(client)
    assert len(files) == 8  # 4 images x (full + thumbnail)

    again = client.post(URL, json=_dump()).json()
    assert (again["scenes"], again["items"], again["skipped"]) == (0, 0, 4)
    assert stored_keys(client) == files
    assert client.get("/api/v1/images/search").json()["total"] == 4


def test_bad_shapes_are_422(client: TestClient) -> None:
    assert_error(client.post(URL, json={"scene_cache": []}), 422)
    assert_error(
        client.post(URL, content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    assert client.post(URL, json={}).json() == {
        "status": "empty", "scenes": 0, "items": 0, "skipped": 0, "errors": [], "ignored": [],
        "total_size_mb": 0.0,
    }  # fmt: skip


def test_migration_accepts_bodies_above_the_default_limit(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(worldbase_max_body_bytes=100_000))
    reset_app(client)
    big = {"scene_cache": {}, "item_images": {}, "padding": "x" * 200_000}
    assert client.post(URL, json=big).status_code == 200
    # ...while every other route keeps the default.
    assert_error(client.post("/api/v1/images/generate", json=big), 413)


def test_decompression_bombs_are_per_entry_errors_and_the_rest_migrates(
    client: TestClient,
) -> None:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    dump = {
        "scene_cache": {
            "scene_cache_Tavern_Evening_Clear": {"image": b64(png_bomb())},
            "scene_cache_Forest_Night_Clear": {"image": _png((10, 40, 10))},
        },
        "item_images": {
            "item_image_Rope": {
                "images": [
                    {"image": b64(webp_bomb())},
                    {"image": _png((200, 0, 0), (32, 32))},
                    {"image": b64(jpeg_bomb())},
                ]
            }
        },
    }
    response = client.post(URL, json=dump)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["scenes"], report["items"]) == (1, 1)
    assert len(report["errors"]) == 3
    assert all("too large" in error["error"] for error in report["errors"]), report["errors"]
    assert len(stored_keys(client)) == 4


def test_the_raw_localstorage_dump_migrates_and_unusable_keys_are_reported(
    client: TestClient,
) -> None:
    """`JSON.stringify({...localStorage})`: flat keys whose values are JSON text."""
    import json

    tavern = _png((120, 60, 20))
    raw = {
        "scene_cache_Tavern_Evening_Rain": json.dumps(
            {"image": "data:image/png;base64," + tavern, "timestamp": "2025-10-20T18:00:00Z"}
        ),
        "scene_cache_Forest_Night_Clear": {"imageData": _png((10, 40, 10))},
        "item_image_Dagger": json.dumps(
            {"images": [{"data": _png((90, 90, 90), (32, 32)), "customPrompt": ""}]}
        ),
        "item_image_Lockpicks": _png((200, 200, 0), (32, 32)),
        "item_image_Rope": "{broken json",
        "dnd-theme": "cyber",
        "aidnd_savegame": json.dumps({"hp": 10}),
        "lastActiveTab": "inventory",
    }
    response = client.post(URL, json=raw)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["scenes"], report["items"], report["status"]) == (2, 2, "partial")
    assert [e["key"] for e in report["errors"]] == ["item_image_Rope"]
    assert sorted(i["key"] for i in report["ignored"]) == [
        "aidnd_savegame", "dnd-theme", "lastActiveTab"
    ]  # fmt: skip
    scene = client.post(
        "/api/v1/scenes/generate",
        json={"location": "Tavern", "time_of_day": "evening", "weather": "rain"},
    ).json()
    assert scene["cached"] is True and scene["image"]["provider"] == "localstorage"
    names = {i["subject_name"] for i in client.get("/api/v1/images/search").json()["items"]}
    assert names == {"Tavern", "Forest", "Dagger", "Lockpicks"}
    again = client.post(URL, json=raw).json()
    assert (again["scenes"], again["items"], again["skipped"]) == (0, 0, 4)


def test_the_games_own_library_keys_migrate(client: TestClient) -> None:
    """retro-adventure-game.html keeps `nanoBananaSceneCache` and `nanoBananaImageLibrary`."""
    import json

    scenes = {
        "scene_emberpeak_dawn_clear": {
            "location": "Emberpeak", "imageData": "data:image/png;base64," + _png((250, 120, 40)),
            "timeOfDay": "dawn", "weather": "clear", "prompt": "A village", "useCount": 3,
        },
        "scene_broken": {"location": "Nowhere"},
    }  # fmt: skip
    library = {
        "Healing Potion": {
            "featured": "img_2",
            "images": [
                {"id": "img_1", "data": _png((200, 0, 0), (32, 32)), "customPrompt": ""},
                {
                    "id": "img_2",
                    "data": _png((0, 200, 0), (32, 32)),
                    "customPrompt": "A green potion",
                },
            ],
        }
    }
    dump = {
        "nanoBananaSceneCache": json.dumps(scenes),
        "nanoBananaImageLibrary": json.dumps(library),
    }
    report = client.post(URL, json=dump).json()
    assert (report["scenes"], report["items"]) == (1, 2), report
    assert [e["key"] for e in report["errors"]] == ["nanoBananaSceneCache/scene_broken"]
    scene = client.post(
        "/api/v1/scenes/generate", params={"location": "Emberpeak", "time_of_day": "Dawn"}
    ).json()
    assert scene["cached"] is True
    potions = client.get("/api/v1/images/search", params={"subject_name": "Healing Potion"})
    items = potions.json()["items"]
    assert [(i["is_featured"], i["custom_prompt"]) for i in items] == [
        (True, "A green potion"), (False, None)
    ]  # fmt: skip


def test_a_dump_with_nothing_usable_says_so(client: TestClient) -> None:
    report = client.post(URL, json={"dnd-theme": "cyber", "gameState": "{}"}).json()
    assert report["status"] == "empty" and report["scenes"] == report["items"] == 0
    assert {i["key"] for i in report["ignored"]} == {"dnd-theme", "gameState"}
    failed = client.post(URL, json={"scene_cache_Tavern_Day_Clear": "not an image"}).json()
    assert failed["status"] == "failed" and len(failed["errors"]) == 1
