"""Every 4xx/5xx has the one error shape; X-Request-ID on every response; body size limit."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from worldbase.settings import Settings


def assert_error_shape(response: object, code: int) -> dict:
    body = response.json()  # type: ignore[attr-defined]
    assert response.status_code == code  # type: ignore[attr-defined]
    assert body["status"] == "error"
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert "detail" in body
    return body


def test_unknown_path_is_404_in_error_shape(client: TestClient) -> None:
    response = client.get("/no/such/path")
    assert_error_shape(response, 404)
    assert len(response.headers["x-request-id"]) >= 16


def test_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/no/such/path", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_method_not_allowed_in_error_shape(client: TestClient) -> None:
    assert_error_shape(client.delete("/api/auth/register"), 405)


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/api/auth/register", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    body = assert_error_shape(response, 422)
    assert body["detail"][0]["type"] == "json_invalid"


def test_wrong_types_list_the_fields(client: TestClient) -> None:
    response = client.post("/api/auth/register", json={"email": 5, "password": ["x"]})
    body = assert_error_shape(response, 422)
    fields = {tuple(d["loc"]) for d in body["detail"]}
    assert ("body", "email") in fields and ("body", "password") in fields
    assert "email" in body["message"]


@pytest.fixture
def small_body_client(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> Iterator[TestClient]:
    yield app_factory(make_settings(worldbase_max_body_bytes=1000))


def test_oversized_body_is_413(small_body_client: TestClient) -> None:
    response = small_body_client.post(
        "/api/auth/register", content=b"x" * 5000, headers={"content-type": "application/json"}
    )
    body = assert_error_shape(response, 413)
    assert body["detail"] == {"limit": 1000}


def test_oversized_chunked_body_is_413(small_body_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 500

    response = small_body_client.post(
        "/api/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error_shape(response, 413)


def test_unexpected_error_is_500_without_trace(client: TestClient) -> None:
    @client.app.get("/boom-for-test")  # type: ignore[attr-defined]
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    response = client.get("/boom-for-test")
    body = assert_error_shape(response, 500)
    assert "hunter2" not in response.text
    assert body["detail"]["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/register", "/api/maps"])
def test_json_nested_past_the_decoders_depth_is_4xx(client: TestClient, path: str) -> None:
    """`[[[[…` 100,000 deep made `json.loads` raise RecursionError: once a 500."""
    response = client.post(
        path, content=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["status"] == "error"
