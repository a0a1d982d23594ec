"""The app as a whole: offline docs, OpenAPI completeness, app selection, CORS."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient

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
