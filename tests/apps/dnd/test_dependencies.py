"""Who may write: open by default (seed clients send no credentials), owners and admins
with DND_REQUIRE_AUTH; and the rate limits with the seed's 429 body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.apps.dnd.conftest import generate, reset_app
from tests.builders import assert_error, auth_headers, register_user
from worldbase.settings import Settings


@pytest.fixture
def strict(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    client = app_factory(make_settings(dnd_require_auth=True))
    reset_app(client)
    return client


def test_open_by_default_and_a_token_records_the_creator(client: TestClient) -> None:
    anonymous = generate(client)
    assert anonymous.status_code == 201 and anonymous.json()["created_by"] is None
    user, token = register_user(client)
    owned = generate(client, headers=auth_headers(token))
    assert owned.json()["created_by"] == user["id"]
    # Open mode: anyone may feature or delete (the seed's behaviour).
    assert client.put(f"/api/v1/images/{owned.json()['id']}/feature").status_code == 200
    assert client.delete(f"/api/v1/images/{owned.json()['id']}").status_code == 200
    assert client.delete("/api/v1/scenes/cache/clear").status_code == 200
    assert_error(generate(client, headers=auth_headers("not-a-token")), 401)


def test_required_auth_refuses_anonymous_writes_but_not_reads(strict: TestClient) -> None:
    assert_error(generate(strict), 401)
    assert_error(strict.post("/api/v1/scenes/generate", params={"location": "Tavern"}), 401)
    assert_error(strict.post("/api/v1/migrate/from-localstorage", json={}), 401)
    assert_error(strict.delete("/api/v1/scenes/cache/clear"), 401)
    assert_error(strict.post("/api/v1/maintenance/cleanup/expired-cache"), 401)
    _, token = register_user(strict)
    image_id = generate(strict, headers=auth_headers(token)).json()["id"]
    assert strict.get(f"/api/v1/images/{image_id}").status_code == 200
    assert strict.get("/api/v1/images/search").json()["total"] == 1
    assert strict.get(f"/api/v1/images/{image_id}/file").status_code == 200
    assert strict.get("/api/v1/scenes/cache/stats").status_code == 200
    assert strict.get("/api/v1/maintenance/stats").status_code == 200
    assert_error(strict.put(f"/api/v1/images/{image_id}/feature"), 401)
    assert_error(strict.delete(f"/api/v1/images/{image_id}"), 401)


@pytest.mark.parametrize("action", ["feature", "delete", "restore"])
def test_required_auth_owner_and_admin_may_edit_others_may_not(
    strict: TestClient, action: str
) -> None:
    _, owner = register_user(strict)
    _, other = register_user(strict)
    _, admin = register_user(strict, admin=True)
    first, second = (
        generate(strict, headers=auth_headers(owner), prompt=f"A longsword number {n}").json()["id"]
        for n in (1, 2)
    )
    if action == "restore":
        for image_id in (first, second):
            strict.delete(f"/api/v1/images/{image_id}", headers=auth_headers(owner))

    def call(image_id: int, token: str | None) -> Any:
        headers = auth_headers(token) if token else None
        if action == "feature":
            return strict.put(f"/api/v1/images/{image_id}/feature", headers=headers)
        if action == "delete":
            return strict.delete(f"/api/v1/images/{image_id}", headers=headers)
        return strict.post(f"/api/v1/images/{image_id}/restore", headers=headers)

    assert_error(call(first, None), 401)
    assert_error(call(first, other), 403)
    assert call(first, owner).status_code == 200
    assert call(second, admin).status_code == 200
    visible = strict.get("/api/v1/images/search").json()
    if action == "feature":
        assert [i["is_featured"] for i in visible["items"]] == [True, True]
    elif action == "delete":
        assert visible["total"] == 0
    else:
        assert visible["total"] == 2


def test_required_auth_images_without_creator_are_admin_only(
    strict: TestClient,
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
) -> None:
    # Made anonymously while the server was open, then the server requires sign-in.
    open_client = app_factory(make_settings())
    image_id = generate(open_client).json()["id"]
    _, admin = register_user(strict, admin=True)
    _, user = register_user(strict)
    url = f"/api/v1/images/{image_id}/feature"
    assert_error(strict.put(url, headers=auth_headers(user)), 403)
    assert strict.put(url, headers=auth_headers(admin)).status_code == 200


def test_required_auth_cache_and_cleanups_need_an_admin(strict: TestClient) -> None:
    _, user = register_user(strict)
    _, admin = register_user(strict, admin=True)
    for method, path in (
        ("DELETE", "/api/v1/scenes/cache/clear"),
        ("POST", "/api/v1/maintenance/cleanup/expired-cache"),
        ("POST", "/api/v1/maintenance/cleanup/orphaned-images"),
    ):
        assert_error(strict.request(method, path, headers=auth_headers(user)), 403)
        assert strict.request(method, path, headers=auth_headers(admin)).status_code == 200
    scene = strict.post(
        "/api/v1/scenes/generate", params={"location": "Tavern"}, headers=auth_headers(user)
    )
    assert scene.status_code == 200


def test_image_generation_rate_limit_answers_the_seed_429(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(max_requests_per_minute=2))
    reset_app(client)
    assert generate(client).status_code == 201
    assert generate(client, prompt="A second longsword, this one of ice").status_code == 201
    limited = generate(client, prompt="A third longsword, this one of lightning")
    body = assert_error(limited, 429)
    assert body["message"] == "Rate limit exceeded"
    assert int(limited.headers["retry-after"]) >= 1
    assert client.get("/api/v1/images/search").json()["total"] == 2


def test_scene_rate_limit_counts_generations_not_cache_hits(client: TestClient) -> None:
    for _ in range(8):  # one generation, then hits: never limited
        assert (
            client.post("/api/v1/scenes/generate", params={"location": "Tavern"}).status_code == 200
        )
    for n in range(4):
        response = client.post("/api/v1/scenes/generate", params={"location": f"Town {n}"})
        assert response.status_code == 200
    limited = client.post("/api/v1/scenes/generate", params={"location": "Town 9"})
    assert assert_error(limited, 429)["message"] == "Rate limit exceeded"
    assert "retry-after" in limited.headers
