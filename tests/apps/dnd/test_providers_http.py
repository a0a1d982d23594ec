"""The self-hosters' providers over HTTP: an OpenAI-compatible images API and a Stable
Diffusion web UI (AUTOMATIC1111), each against a local fake server honouring its contract
(request shape, `b64_json` / `images` answers, its error bodies), reached through the
source policy (the fake is allow-listed, as an operator would allow-list a LAN server)."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.apps.dnd.conftest import generate, reset_app, stored_keys
from tests.builders import assert_error
from worldbase.apps import registry
from worldbase.apps.dnd.providers import create_provider, provider_name
from worldbase.apps.dnd.providers_http import images_url, openai_size
from worldbase.settings import ConfigurationError, Settings


def _png_b64(size: tuple[int, int], color: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class FakeImageServer:
    """OpenAI's `POST /v1/images/generations` and A1111's `POST /sdapi/v1/txt2img`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.mode = "image"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length", 0))
        body = json.loads(handler.rfile.read(length) or b"{}")
        self.requests.append(
            {"path": handler.path, "auth": handler.headers.get("authorization"), "body": body}
        )
        if self.mode == "slow":
            time.sleep(2)
        if handler.path == "/v1/images/generations":
            status, payload = self._openai(body)
        elif handler.path == "/sdapi/v1/txt2img":
            status, payload = self._a1111(body)
        else:
            status, payload = 404, {"detail": "Not Found"}
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # "slow": the provider gave up waiting, as it should

    def _openai(self, body: dict[str, Any]) -> tuple[int, Any]:
        if self.mode == "quota":
            error = {"message": "Rate limit reached for images per minute", "type": "requests",
                     "param": None, "code": "rate_limit_exceeded"}  # fmt: skip
            return 429, {"error": error}
        if self.mode == "error":
            error = {"message": "Your request was rejected as a result of our safety system.",
                     "type": "invalid_request_error", "param": None,
                     "code": "content_policy_violation"}  # fmt: skip
            return 400, {"error": error}
        if self.mode == "no-image":
            return 200, {"created": 1, "data": []}
        if self.mode == "not-json":
            return 200, b"<html>gateway</html>"
        width, height = (int(v) for v in body["size"].split("x"))
        item = {"b64_json": _png_b64((width, height), (200, 40, 40)), "revised_prompt": "..."}
        return 200, {"created": int(time.time()), "data": [item]}

    def _a1111(self, body: dict[str, Any]) -> tuple[int, Any]:
        if self.mode == "error":
            return 500, {"error": "OutOfMemoryError", "detail": "", "body": "",
                         "errors": "CUDA out of memory. Tried to allocate 2.00 GiB"}  # fmt: skip
        if self.mode == "no-image":
            return 200, {"images": [], "parameters": body, "info": "{}"}
        if self.mode == "not-image":
            return 200, {"images": [base64.b64encode(b"no picture").decode()]}
        picture = _png_b64((body["width"], body["height"]), (40, 40, 200))
        info = json.dumps({"prompt": body["prompt"], "seed": body["seed"]})
        return 200, {"images": [picture], "parameters": body, "info": info}


@pytest.fixture
def fake_server() -> Iterator[tuple[str, FakeImageServer]]:
    fake = FakeImageServer()

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


def _openai_app(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings],
    url: str, **overrides: Any,
) -> TestClient:  # fmt: skip
    values: dict[str, Any] = {
        "image_provider": "openai",
        "openai_api_key": "sk-test",
        "openai_base_url": f"{url}/v1",
        "openai_image_model": "gpt-image-1",
        "worldbase_source_allowlist": [f"{url}/"],
        "image_timeout_seconds": 1.0,
        **overrides,
    }
    client = app_factory(make_settings(**values))
    reset_app(client)
    return client


def _sd_app(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings],
    url: str, **overrides: Any,
) -> TestClient:  # fmt: skip
    values: dict[str, Any] = {
        "image_provider": "automatic1111",
        "sd_webui_url": url,
        "worldbase_source_allowlist": [f"{url}/"],
        "image_timeout_seconds": 1.0,
        **overrides,
    }
    client = app_factory(make_settings(**values))
    reset_app(client)
    return client


def _stored_picture(body: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(body["base64_data"]))).convert("RGB")


def test_openai_compatible_api_is_chosen_by_settings_and_honours_the_contract(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    fake_server: tuple[str, FakeImageServer],
) -> None:
    url, fake = fake_server
    client = _openai_app(app_factory, make_settings, url)
    response = generate(client, subject_type="scene", subject_name="Tavern", aspect_ratio="16:9")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["provider"] == "openai" and (body["width"], body["height"]) == (1024, 576)
    assert _stored_picture(body).getpixel((10, 10))[0] > 150
    (request,) = fake.requests
    assert request["path"] == "/v1/images/generations"
    assert request["auth"] == "Bearer sk-test"
    sent = request["body"]
    assert sent["model"] == "gpt-image-1" and sent["n"] == 1 and sent["size"] == "1536x1024"
    assert "Tavern" in sent["prompt"] and "response_format" not in sent
    assert client.get("/api/v1/maintenance/stats").json()["provider"] == "openai"


def test_openai_base_url_without_v1_and_older_models_ask_for_b64_json(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    fake_server: tuple[str, FakeImageServer],
) -> None:
    url, fake = fake_server
    client = _openai_app(
        app_factory, make_settings, url, openai_base_url=url, openai_image_model="dall-e-2",
        openai_api_key=None,
    )  # fmt: skip
    response = generate(client)
    assert response.status_code == 201, response.text
    (request,) = fake.requests
    assert request["path"] == "/v1/images/generations" and request["auth"] is None
    assert request["body"]["response_format"] == "b64_json"
    assert request["body"]["size"] == "1024x1024"


@pytest.mark.parametrize(
    ("mode", "status"),
    [("quota", 429), ("error", 502), ("no-image", 502), ("not-json", 502), ("slow", 504)],
)
def test_openai_failures_map_to_statuses_and_leave_nothing(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    fake_server: tuple[str, FakeImageServer],
    mode: str,
    status: int,
) -> None:
    url, fake = fake_server
    fake.mode = mode
    client = _openai_app(app_factory, make_settings, url)
    body = assert_error(generate(client), status)
    if mode == "error":
        assert body["detail"]["upstream_status"] == 400
        assert "safety system" in body["detail"]["message"]
    assert stored_keys(client) == []
    assert client.get("/api/v1/images/search").json()["total"] == 0


def test_automatic1111_is_chosen_by_settings_and_honours_the_contract(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    fake_server: tuple[str, FakeImageServer],
) -> None:
    url, fake = fake_server
    client = _sd_app(app_factory, make_settings, url, sd_webui_steps=12)
    response = generate(client, subject_type="character", subject_name="Hero", aspect_ratio="9:16")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["provider"] == "automatic1111" and (body["width"], body["height"]) == (576, 1024)
    assert _stored_picture(body).getpixel((10, 10))[2] > 150
    (request,) = fake.requests
    assert request["path"] == "/sdapi/v1/txt2img"
    sent = request["body"]
    assert (sent["width"], sent["height"], sent["steps"]) == (576, 1024, 12)
    assert "Hero" in sent["prompt"] and sent["negative_prompt"]
    assert isinstance(sent["seed"], int) and sent["seed"] >= 0
    # Same request, same seed: a Stable Diffusion picture is reproducible.
    generate(client, subject_type="character", subject_name="Hero", aspect_ratio="9:16")
    assert fake.requests[1]["body"]["seed"] == sent["seed"]


@pytest.mark.parametrize(
    ("mode", "status"), [("error", 502), ("no-image", 502), ("not-image", 502), ("slow", 504)]
)
def test_automatic1111_failures_map_to_statuses_and_leave_nothing(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    fake_server: tuple[str, FakeImageServer],
    mode: str,
    status: int,
) -> None:
    url, fake = fake_server
    fake.mode = mode
    client = _sd_app(app_factory, make_settings, url)
    body = assert_error(generate(client), status)
    if mode == "error":
        assert "CUDA out of memory" in body["detail"]["message"]
    assert stored_keys(client) == []


def test_unreachable_and_not_allow_listed_servers_are_502(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    fake_server: tuple[str, FakeImageServer],
) -> None:
    from tests.conftest import free_port

    url, fake = fake_server
    dead = f"http://127.0.0.1:{free_port()}"
    client = _sd_app(app_factory, make_settings, dead)
    assert "unreachable" in assert_error(generate(client), 502)["message"]
    # A provider on loopback that the operator did not allow-list is refused before any request.
    refused = _sd_app(app_factory, make_settings, url, worldbase_source_allowlist=[])
    body = assert_error(generate(refused), 502)
    assert "source policy" in body["message"]
    assert body["detail"]["settings"] == ["WORLDBASE_SOURCE_ALLOWLIST"]
    assert fake.requests == []


def test_provider_choice_and_start_up_checks(make_settings: Callable[..., Settings]) -> None:
    assert provider_name(make_settings()) == "procedural"
    assert provider_name(make_settings(sd_webui_url="http://sd.lan:7860")) == "automatic1111"
    assert provider_name(make_settings(gemini_api_key="k", sd_webui_url="http://x")) == "gemini"
    assert provider_name(make_settings(image_provider="procedural", gemini_api_key="k")) == (
        "procedural"
    )
    assert create_provider(make_settings(image_provider="openai", openai_api_key="k")).name == (
        "openai"
    )
    for bad, message in [
        ({"image_provider": "gemini"}, "GEMINI_API_KEY"),
        ({"image_provider": "automatic1111"}, "SD_WEBUI_URL"),
        ({"image_provider": "openai"}, "OPENAI_API_KEY"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            registry.configure(make_settings(**bad))
    registry.configure(
        make_settings(image_provider="openai", openai_base_url="http://localai.lan:8080")
    )
    with pytest.raises(ValueError, match="image_provider"):
        registry.configure(make_settings(image_provider="midjourney"))


def test_openai_urls_and_sizes() -> None:
    assert images_url("https://api.openai.com/v1") == "https://api.openai.com/v1/images/generations"
    assert images_url("http://localai:8080/") == "http://localai:8080/v1/images/generations"
    assert openai_size("gpt-image-1", "9:16") == "1024x1536"
    assert openai_size("dall-e-3", "16:9") == "1792x1024"
    assert openai_size("stable-diffusion", "4:3") == "1024x1024"


def test_automatic1111_basic_auth_from_the_url(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    fake_server: tuple[str, FakeImageServer],
) -> None:
    """A web UI started with `--api-auth user:pass`; the LAN allow-listed as a network."""
    url, fake = fake_server
    with_auth = url.replace("http://", "http://artist:secret@")
    client = _sd_app(
        app_factory, make_settings, with_auth, worldbase_source_allowlist=["127.0.0.1/32"]
    )
    assert generate(client).status_code == 201
    expected = "Basic " + base64.b64encode(b"artist:secret").decode()
    assert fake.requests[0]["auth"] == expected
