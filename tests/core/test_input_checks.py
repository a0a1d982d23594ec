"""Text input with NUL characters and integers beyond the database's range are 422, never 500
(issue 18, item 10): PostgreSQL refuses both with an error."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import assert_error, auth_headers, register_user
from tests.conftest import base_settings
from worldbase.core.errors import BadInput


def test_nul_in_a_query_or_a_path_is_422(client: TestClient) -> None:
    for url in (
        "/objects?tag=a%00b",
        "/objects?tag=a%00",
        "/objects?ta%00g=a",
        "/api/v1/images/search?subject_name=x%00y",
        "/api/maps/a%00b",
    ):
        body = assert_error(client.get(url), 422)
        assert "NUL" in body["message"], url
    assert client.get("/objects?tag=amenity").status_code == 200


def test_nul_in_a_json_body_is_422_but_an_escaped_backslash_is_text(client: TestClient) -> None:
    _, token = register_user(client)
    headers = auth_headers(token) | {"content-type": "application/json"}
    for text in ('{"name": "a\\u0000b"}', '{"name": "\\\\\\u0000"}', '{"\\u0000": 1}'):
        response = client.patch("/api/auth/me", content=text, headers=headers)
        assert "NUL" in assert_error(response, 422)["message"], text
    literal = json.dumps({"name": "a\\u0000b"})  # backslash, u, 0, 0, 0, 0: no NUL
    response = client.patch("/api/auth/me", content=literal, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "a\\u0000b"


def test_the_osm_tag_filter_refuses_nul_wherever_it_comes_from() -> None:
    from worldbase.apps.osm.service import parse_tag_filter

    assert parse_tag_filter("amenity=cafe") == ("amenity", "cafe")
    for text in ("a\x00b", "amenity=ca\x00fe"):
        with pytest.raises(BadInput):
            parse_tag_filter(text)


def _openapi() -> dict[str, Any]:
    from worldbase.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        return create_app(base_settings(Path(tmp) / "data")).openapi()


def _unbounded_integers(schema: Any, components: dict[str, Any], seen: frozenset[str]) -> int:
    if not isinstance(schema, dict):
        return 0
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return 0
        return _unbounded_integers(components[name], components, seen | {name})
    count = int(schema.get("type") == "integer" and "maximum" not in schema)
    subs = [*schema.get("anyOf", []), *schema.get("oneOf", []), *schema.get("allOf", [])]
    subs += list(schema.get("properties", {}).values())
    subs += [schema.get("items"), schema.get("additionalProperties")]
    return count + sum(_unbounded_integers(sub, components, seen) for sub in subs)


def test_every_integer_of_a_request_body_is_bounded() -> None:
    doc = _openapi()
    components = doc["components"]["schemas"]
    unbounded = [
        f"{method.upper()} {path}"
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        for content in operation.get("requestBody", {}).get("content", {}).values()
        if _unbounded_integers(content.get("schema", {}), components, frozenset())
    ]
    assert unbounded == []
