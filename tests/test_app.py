"""The app as a whole: offline docs, OpenAPI completeness, app selection, CORS."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from worldbase.settings import Settings

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def test_docs_and_redoc_load_their_assets_from_this_server(client: TestClient) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page)
        assert html.status_code == 200
        assert f"/static/docs/{asset}" in html.text
        assert "cdn.jsdelivr.net" not in html.text
        script = client.get(f"/static/docs/{asset}")
        assert script.status_code == 200
        assert len(script.content) > 100_000


def test_every_operation_is_documented_with_errors_and_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 shape is replaced by ours
    operations = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in HTTP_METHODS
    ]
    assert len(operations) >= 11
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), f"{where} has no summary"
        assert "4XX" in op["responses"], f"{where} does not document errors"
        assert op["responses"]["4XX"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorRead"
        }
        ok = next(code for code in op["responses"] if str(code).startswith("2"))
        content = op["responses"][ok].get("content", {})
        documented = json.dumps(content)
        for ref in _refs(documented):
            documented += json.dumps(schemas[ref])
        if "requestBody" in op:
            body = json.dumps(op["requestBody"])
            for ref in _refs(body):
                body += json.dumps(schemas[ref])
            assert "example" in body, f"{where} request body has no example"
        assert not content or "example" in documented, f"{where} response has no example"


def _refs(text: str) -> list[str]:
    prefix = '"#/components/schemas/'
    return [part.split('"')[0] for part in text.split(prefix)[1:]]


def test_worldbase_apps_selects_the_mounted_apps(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(worldbase_apps="dnd,osm"))
    assert client.get("/").json()["apps"] == ["dnd", "osm"]


def test_cors_allows_only_the_configured_origins(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(cors_origins='["https://yourgame.com"]'))
    allowed = client.options(
        "/api/auth/me",
        headers={"Origin": "https://yourgame.com", "Access-Control-Request-Method": "GET"},
    )
    assert allowed.headers["access-control-allow-origin"] == "https://yourgame.com"
    refused = client.get("/", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in refused.headers


def _preflight(client: TestClient, origin: str, path: str = "/api/v1/images/search") -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    )


DEV_ORIGINS = (
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
)


def test_cors_in_development_allows_the_local_frontends(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(worldbase_env="development"))
    for origin in DEV_ORIGINS:
        response = _preflight(client, origin)
        assert response.status_code == 200, origin
        assert response.headers["access-control-allow-origin"] == origin
        assert "POST" in response.headers["access-control-allow-methods"]
        allowed_headers = response.headers["access-control-allow-headers"].lower()
        assert "content-type" in allowed_headers and "authorization" in allowed_headers
        assert response.headers["access-control-allow-credentials"] == "true"
    # Simple requests carry the header too.
    answer = client.get("/", headers={"Origin": "http://localhost:5173"})
    assert answer.headers["access-control-allow-origin"] == "http://localhost:5173"
    # Other origins are not allowed, even in development.
    refused = _preflight(client, "https://evil.example")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


def test_cors_in_development_adds_the_configured_origins(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    # Seed 004's singular CORS_ORIGIN, through the environment as its .env sets it.
    client = app_factory(
        make_settings(worldbase_env="development", cors_origins="https://yourgame.com")
    )
    for origin in ("https://yourgame.com", "http://localhost:3000"):
        response = _preflight(client, origin)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin


def test_cors_in_production_allows_only_what_is_configured(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    production = {"worldbase_env": "production", "jwt_secret": "p" * 48}
    if not make_settings().database_url:
        production["database_url"] = make_settings().sqlalchemy_url  # SQLite, as configured
    nothing = app_factory(make_settings(**production))
    refused = _preflight(nothing, "http://localhost:3000")
    assert refused.status_code >= 400
    assert "access-control-allow-origin" not in refused.headers

    configured = app_factory(make_settings(cors_origins="https://yourgame.com", **production))
    assert _preflight(configured, "https://yourgame.com").status_code == 200
    local = _preflight(configured, "http://localhost:3000")
    assert local.status_code == 400
    assert "access-control-allow-origin" not in local.headers


def test_cors_origin_singular_is_read(
    monkeypatch: pytest.MonkeyPatch,
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
) -> None:
    monkeypatch.setenv("CORS_ORIGIN", "https://bestiary.example")
    client = app_factory(make_settings())  # the tests' env: no development origins
    response = _preflight(client, "https://bestiary.example")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://bestiary.example"


def test_allowed_hosts_refuses_other_host_headers(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(allowed_hosts="localhost,127.0.0.1,*.example.org"))
    for host in ("localhost", "127.0.0.1:8000", "api.example.org"):
        assert client.get("/health", headers={"Host": host}).status_code == 200, host
    refused = client.get("/health", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert refused.json() == {
        "status": "error",
        "code": 400,
        "message": "Invalid host header",
        "detail": {"setting": "ALLOWED_HOSTS"},
    }
    # WebSockets too (the OSM live feed): refused before the app accepts them.
    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        client.websocket_connect("/ws/c1", headers={"Host": "evil.example"}),
    ):
        pass
    assert denied.value.status_code == 400
    with client.websocket_connect("/ws/c1", headers={"Host": "localhost"}) as ws:
        ws.send_json({"type": "ping"})
    # Without ALLOWED_HOSTS any host is served (the TestClient's own is `testserver`).
    assert app_factory(make_settings()).get("/health").status_code == 200


def test_image_storage_dir_holds_the_dnd_images(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
) -> None:
    """Seed 002's IMAGE_STORAGE_DIR names the local folder its images are written to."""
    folder = tmp_path / "images"
    monkeypatch.setenv("IMAGE_STORAGE_DIR", str(folder))
    client = app_factory(make_settings(storage_backend="local"))
    created = client.post(
        "/api/v1/images/generate",
        json={"subject_type": "item", "subject_name": "Lockpicks", "prompt": "A set of picks"},
    )
    assert created.status_code == 201, created.text
    stored = sorted(folder.rglob("*.webp"))
    assert len(stored) == 2  # the image and its thumbnail
    served = client.get(f"/api/v1/images/{created.json()['id']}/file")
    assert served.status_code == 200
    assert served.content in [path.read_bytes() for path in stored]
