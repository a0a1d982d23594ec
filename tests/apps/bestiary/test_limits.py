"""Rate limits on the bestiary's writes and uploads (seed 004: "Implement rate limiting")."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.apps.bestiary.conftest import TROLL, box_glb, png, reset_app
from tests.builders import assert_error, auth_headers, register_user
from worldbase.settings import Settings


def test_writes_and_uploads_are_rate_limited_with_retry_after(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(
        make_settings(bestiary_write_rate_limit="3/minute", bestiary_upload_rate_limit="2/minute")
    )
    reset_app(client)
    _, token = register_user(client, admin=True)
    admin = auth_headers(token)
    _, user_token = register_user(client)
    user = auth_headers(user_token)

    # Writes: three per minute per client address, whoever signs the request.
    created = client.post("/api/characters", json=TROLL, headers=admin)
    assert created.status_code == 201, created.text
    url = f"/api/characters/{created.json()['id']}"
    assert client.put(url, json={"level": 30}, headers=admin).status_code == 200
    assert client.post(f"/api/favorites/{created.json()['id']}", headers=user).status_code == 201
    for method, path, body in (
        ("PUT", url, {"level": 31}),
        ("POST", "/api/characters", TROLL),
        ("DELETE", url, None),
        ("POST", f"/api/favorites/{created.json()['id']}", None),
        ("POST", "/api/export", {"character_id": created.json()["id"], "format": "obj"}),
    ):
        limited = client.request(method, path, json=body, headers=admin)
        error = assert_error(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert error["detail"]["limit"] == "3/minute"
    assert client.get(url).json()["level"] == 30  # nothing changed
    assert client.get("/api/characters").status_code == 200  # reads are not limited

    # Uploads: their own budget, two per minute.
    for _ in range(2):
        response = client.put(f"{url}/model", files={"file": ("m.glb", box_glb())}, headers=admin)
        assert response.status_code == 200, response.text
    limited = client.put(f"{url}/image", files={"file": ("p.png", png())}, headers=admin)
    assert_error(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    photos = [("files", (f"{i}.png", png(seed=i), "image/png")) for i in range(3)]
    assert_error(client.post("/api/reconstruct/upload", files=photos, headers=user), 429)
    assert client.get(url).json()["image_url"] is None
