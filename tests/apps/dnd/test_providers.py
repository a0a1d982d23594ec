"""Image providers: the procedural painter, and Gemini through Google's SDK against a local
fake server honouring generateContent's request and response contract."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.apps.dnd.conftest import generate, reset_app, stored_keys, use_provider
from tests.builders import assert_error
from worldbase.apps.dnd import procedural
from worldbase.apps.dnd.providers import GeminiProvider, GenerationSpec, create_provider
from worldbase.settings import Settings

MODEL_PATH = "/models/gemini-2.5-flash-image:generateContent"  # after /v1 or /v1beta


class FakeGemini:
    """What the fake answers next, and the requests it saw."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.mode = "image"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length", 0))
        body = json.loads(handler.rfile.read(length) or b"{}")
        self.requests.append(
            {"path": handler.path, "key": handler.headers.get("x-goog-api-key"), "body": body}
        )
        if self.mode == "slow":
            time.sleep(2)
        status, payload = self._payload()
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _payload(self) -> tuple[int, dict[str, Any]]:
        if self.mode == "quota":
            return 429, {"error": {"code": 429, "message": "Resource has been exhausted",
                                   "status": "RESOURCE_EXHAUSTED"}}  # fmt: skip
        if self.mode == "error":
            return 500, {"error": {"code": 500, "message": "Internal", "status": "INTERNAL"}}
        if self.mode == "no-image":
            text = {"text": "I cannot draw that."}
            return 200, {"candidates": [{"content": {"role": "model", "parts": [text]}}]}
        buffer = io.BytesIO()
        Image.new("RGB", (1024, 576), (30, 90, 160)).save(buffer, "PNG")
        inline = {"inlineData": {"mimeType": "image/png",
                                 "data": base64.b64encode(buffer.getvalue()).decode()}}  # fmt: skip
        parts = [{"text": "Here is your image."}, inline]
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}
        return 200, {"candidates": [candidate], "modelVersion": "gemini-2.5-flash-image"}


@pytest.fixture
def fake_gemini() -> Iterator[tuple[str, FakeGemini]]:
    fake = FakeGemini()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            fake.answer(self)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        server.shutdown()
        server.server_close()


def test_gemini_is_chosen_by_settings_and_honours_the_contract(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    fake_gemini: tuple[str, FakeGemini],
) -> None:
    url, fake = fake_gemini
    client = app_factory(make_settings(gemini_api_key="test-key", gemini_base_url=url))
    reset_app(client)
    response = generate(client, subject_type="scene", subject_name="Tavern", aspect_ratio="16:9")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["provider"] == "gemini" and (body["width"], body["height"]) == (1024, 576)
    stored = Image.open(io.BytesIO(base64.b64decode(body["base64_data"])))
    assert stored.format == "WEBP" and stored.getpixel((10, 10))[2] > 120
    (request,) = fake.requests
    assert request["path"].startswith("/v1") and request["path"].endswith(MODEL_PATH)
    assert request["key"] == "test-key"
    sent = request["body"]
    assert "Tavern" in sent["contents"][0]["parts"][0]["text"]
    assert sent["generationConfig"]["responseModalities"] == ["IMAGE"]
    assert sent["generationConfig"]["imageConfig"]["aspectRatio"] == "16:9"
    assert client.get("/api/v1/maintenance/stats").json()["provider"] == "gemini"


@pytest.mark.parametrize(
    ("mode", "status"), [("quota", 429), ("error", 502), ("no-image", 502), ("slow", 504)]
)
def test_gemini_failures_map_to_seed_statuses_and_leave_nothing(
    client: TestClient, fake_gemini: tuple[str, FakeGemini], mode: str, status: int
) -> None:
    url, fake = fake_gemini
    fake.mode = mode
    use_provider(client, GeminiProvider(api_key="k", base_url=url, timeout_seconds=0.5))
    assert_error(generate(client), status)
    assert stored_keys(client) == []
    assert client.get("/api/v1/images/search").json()["total"] == 0


def test_unreachable_gemini_is_502(client: TestClient) -> None:
    from tests.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    use_provider(client, GeminiProvider(api_key="k", base_url=dead, timeout_seconds=2))
    assert_error(generate(client), 502)


def test_without_a_key_the_provider_is_procedural(make_settings: Callable[..., Settings]) -> None:
    assert create_provider(make_settings()).name == "procedural"


def _render(
    text: str, kind: str = "scene", size: tuple[int, int] = (1024, 576), seed: int = 1
) -> np.ndarray:
    image = procedural.render(
        text=text, subject_type=kind, width=size[0], height=size[1], seed=seed
    )
    assert image.size == size
    return np.asarray(image, dtype=np.int16)


def test_procedural_is_deterministic_per_seed_and_distinct_per_prompt() -> None:
    tavern = _render("A tavern at night")
    assert np.array_equal(tavern, _render("A tavern at night"))
    assert np.abs(tavern - _render("A tavern at night", seed=2)).mean() > 1
    assert np.abs(tavern - _render("A snowy mountain pass at dawn")).mean() > 20
    assert tavern.std() > 10  # a picture, not a flat box


def test_procedural_reads_time_of_day_and_weather() -> None:
    night = _render("A village at night, clear sky", seed=3).mean()
    day = _render("A village at noon, clear sky", seed=3).mean()
    assert day > night + 30
    assert (
        procedural.read_scene("harbor in a storm at dusk", np.random.default_rng(0)).weather
        == "storm"
    )
    scene = procedural.read_scene("misty swamp at dawn", np.random.default_rng(0))
    assert (scene.time, scene.weather, scene.terrain) == ("dawn", "fog", "swamp")


@pytest.mark.parametrize("ratio", ["1:1", "16:9", "4:3", "9:16"])
def test_procedural_sizes_and_speed(ratio: str) -> None:
    import asyncio

    from worldbase.apps.dnd.providers import ProceduralProvider

    spec = GenerationSpec("item", "Healing Potion", "A red potion in a round flask", None, ratio)
    started = time.perf_counter()
    image = asyncio.run(ProceduralProvider().generate(spec))
    assert time.perf_counter() - started < 1.0
    assert image.size == {"1:1": (1024, 1024), "16:9": (1024, 576), "4:3": (1024, 768),
                          "9:16": (576, 1024)}[ratio]  # fmt: skip


GAME_ITEMS = {  # the game's starting items (retro-adventure-game.html) and their painters
    "Dagger": ("A small, easily concealed blade. Perfect for sneaking.", "dagger"),
    "Lockpicks": ("A set of specialized picks, files, and tension wrenches.", "lockpicks"),
    "Rope (50ft)": ("Hempen rope, sturdy and reliable. Essential for climbing.", "rope"),
    "Torch": ("A wooden stick wrapped in oil-soaked rags. Burns brightly.", "torch"),
    "Sealing Stone": ("A perfectly smooth stone carved with ancient runes.", "stone"),
    "Miner's Note": ("A bloodstained note from the mining camp.", "scroll"),
    "Healing Potion": ("A small vial filled with red liquid.", "potion"),
}


def _game_prompt(name: str) -> str:
    """What the game's item modal sends (buildBasePrompt + its suffix)."""
    description = GAME_ITEMS[name][0]
    return f"{name}, {description} Fantasy RPG item, detailed illustration on neutral background."


@pytest.mark.parametrize("name", sorted(GAME_ITEMS))
def test_the_painter_draws_the_item_the_prompt_names(name: str) -> None:
    from worldbase.apps.dnd import item_shapes

    text = _game_prompt(name)
    assert item_shapes.kind_of(procedural.ordered_words(text)) == GAME_ITEMS[name][1]
    # The game sends its items as "scene"s: they are still painted as items.
    assert procedural.subject_of(text, "scene") == "item"
    picture = _render(text, kind="scene", size=(256, 256))
    assert picture[:24, :24].mean() < 40  # the item's dark backdrop, not a sky
    assert picture[96:160, 96:160].std() > 15  # something stands in the middle


def test_different_items_are_different_pictures_and_places_stay_scenes() -> None:
    dagger = _render(_game_prompt("Dagger"), kind="item", size=(256, 256))
    picks = _render(_game_prompt("Lockpicks"), kind="item", size=(256, 256))
    assert np.abs(dagger - picks).mean() > 5
    for text in ["Emberpeak village at dawn", "A tavern where adventurers trade items"]:
        assert procedural.subject_of(text, "scene") == "scene"
    assert procedural.subject_of("Hero, a Fighter. Character portrait", "scene") == "character"
    assert procedural.subject_of("Dagger on a table", "item") == "item"


def test_an_item_asked_as_a_scene_over_http_is_the_item(client: TestClient) -> None:
    def image(kind: str) -> np.ndarray:
        response = generate(
            client, subject_type=kind, subject_name="Lockpicks",
            prompt=_game_prompt("Lockpicks"), seed=7,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        data = base64.b64decode(response.json()["base64_data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)

    as_scene, as_item = image("scene"), image("item")
    assert np.array_equal(as_scene, as_item)
    assert as_scene[:64, :64].mean() < 40
