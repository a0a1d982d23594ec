"""The scene cache: hits and misses, expiry, force_regenerate, stats, clear, single-flight."""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import update

from tests.apps.dnd.conftest import CountingProvider
from tests.builders import assert_error, run_db
from worldbase.apps.dnd.models import SceneCache
from worldbase.core.db import utcnow

SCENE = "/api/v1/scenes/generate"


def _scene(client: TestClient, **params: object) -> dict:  # type: ignore[type-arg]
    response = client.post(SCENE, params={"location": "Tavern", **params})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_first_call_generates_then_hits_the_cache(client: TestClient) -> None:
    first = _scene(client, time_of_day="Evening", weather="Light Rain")
    assert first["cached"] is False and first["miss_count"] == 1 and first["hit_count"] == 0
    assert first["cache_key"] == "tavern|evening|light rain"
    image = Image.open(io.BytesIO(base64.b64decode(first["image"]["base64_data"])))
    assert image.size == (1024, 576) and first["image"]["subject_type"] == "scene"
    again = _scene(client, time_of_day="  evening ", weather="LIGHT  rain")
    assert again["cached"] is True and again["image_id"] == first["image_id"]
    assert again["hit_count"] == 1
    other = _scene(client, time_of_day="Night", weather="Light Rain")
    assert other["cached"] is False and other["image_id"] != first["image_id"]
    light = _scene(client, time_of_day="Evening", weather="Light Rain", include_data=False)
    assert light["image"]["base64_data"] is None
    stats = client.get("/api/v1/scenes/cache/stats").json()
    assert stats["total_entries"] == 2 and stats["active_entries"] == 2
    assert (stats["total_hits"], stats["total_misses"]) == (2, 2)
    assert stats["hit_rate"] == 0.5 and stats["expiry_days"] == 7


def test_force_regenerate_and_expiry_make_a_new_image(client: TestClient) -> None:
    first = _scene(client)
    forced = _scene(client, force_regenerate=True)
    assert forced["cached"] is False and forced["image_id"] != first["image_id"]
    assert forced["miss_count"] == 2

    async def expire(session):  # type: ignore[no-untyped-def]
        await session.execute(update(SceneCache).values(expires_at=utcnow() - timedelta(days=1)))
        await session.commit()

    run_db(client, expire)
    assert client.get("/api/v1/scenes/cache/stats").json()["expired_entries"] == 1
    renewed = _scene(client)
    assert renewed["cached"] is False and renewed["image_id"] != forced["image_id"]
    # The replaced images stay in the gallery.
    assert (
        client.get("/api/v1/images/search", params={"subject_type": "scene"}).json()["total"] == 3
    )


def test_clear_removes_entries_but_keeps_images(client: TestClient) -> None:
    _scene(client)
    _scene(client, location="Forest")
    cleared = client.delete("/api/v1/scenes/cache/clear").json()
    assert cleared["deleted"] == 2
    assert client.get("/api/v1/scenes/cache/stats").json()["total_entries"] == 0
    assert client.get("/api/v1/images/search").json()["total"] == 2
    assert _scene(client)["cached"] is False


def test_bad_scene_parameters_are_422(client: TestClient) -> None:
    assert_error(client.post(SCENE), 422)
    assert_error(client.post(SCENE, params={"location": "x" * 101}), 422)
    assert_error(client.post(SCENE, params={"location": "<script>"}), 422)
    assert_error(client.post(SCENE, params={"location": "   "}), 422)
    assert client.get("/api/v1/scenes/cache/stats").json()["total_entries"] == 0


def test_concurrent_identical_requests_generate_once(
    client: TestClient, counting: CountingProvider
) -> None:
    def ask(_: int) -> dict:  # type: ignore[type-arg]
        return _scene(client, location="Harbor", time_of_day="Dusk", weather="Fog")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(ask, range(4)))
    assert counting.calls == 1
    assert len({r["image_id"] for r in results}) == 1
    assert sorted(r["cached"] for r in results) == [False, True, True, True]
    stats = client.get("/api/v1/scenes/cache/stats").json()
    assert (stats["total_misses"], stats["total_hits"]) == (1, 3)


def test_failed_scene_generation_leaves_nothing(client: TestClient) -> None:
    from tests.apps.dnd.conftest import stored_keys, use_provider
    from worldbase.apps.dnd.exceptions import GenerationTimeout

    use_provider(client, CountingProvider(delay=0, fail=GenerationTimeout("timed out")))
    assert_error(client.post(SCENE, params={"location": "Tavern"}), 504)
    assert client.get("/api/v1/scenes/cache/stats").json()["total_entries"] == 0
    assert stored_keys(client) == []


def test_single_flight_holds_across_workers_with_redis(
    app_factory,
    make_settings,
    redis_url: str,  # type: ignore[no-untyped-def]
) -> None:
    """Two app instances (two workers) sharing Redis and the database generate once."""
    from tests.apps.dnd.conftest import reset_app, use_provider

    settings = make_settings(redis_url=redis_url)  # embedded: both share one SQLite file
    first = app_factory(settings)
    reset_app(first)  # before the second app starts: TRUNCATE must not race its start-up
    second = app_factory(settings)
    provider = CountingProvider(delay=0.5)
    use_provider(first, provider)
    use_provider(second, provider)

    def ask(client: TestClient) -> dict:  # type: ignore[type-arg]
        return _scene(client, location="Citadel", time_of_day="Night", weather="Snow")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(ask, [first, second, first, second]))
    assert provider.calls == 1
    assert len({r["image_id"] for r in results}) == 1


def test_json_body_as_the_seeds_frontend_sends_it(client: TestClient) -> None:
    body = {"location": "Tavern", "time_of_day": "Evening", "weather": "Rain"}
    first = client.post(SCENE, json=body)
    assert first.status_code == 200, first.text
    assert first.json()["cache_key"] == "tavern|evening|rain" and first.json()["cached"] is False
    # The same scene by query string is the same cache entry.
    again = _scene(client, time_of_day="Evening", weather="Rain")
    assert again["cached"] is True and again["image_id"] == first.json()["image_id"]
    # Missing or null fields take the defaults; force_regenerate works in the body too.
    day = client.post(SCENE, json={"location": "Tavern", "weather": None}).json()
    assert day["cache_key"] == "tavern|day|clear"
    forced = client.post(SCENE, json={**body, "force_regenerate": True}).json()
    assert forced["cached"] is False and forced["image_id"] != first.json()["image_id"]


def test_query_string_wins_over_the_body(client: TestClient) -> None:
    response = client.post(
        SCENE,
        params={"location": "Forest", "weather": "Snow"},
        json={"location": "Tavern", "time_of_day": "Night", "weather": "Rain"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["cache_key"] == "forest|night|snow"


def test_bad_scene_bodies_are_422(client: TestClient) -> None:
    assert "location" in assert_error(client.post(SCENE, json={}), 422)["message"]
    assert_error(client.post(SCENE, json={"location": "x" * 101}), 422)
    assert_error(client.post(SCENE, json={"location": "<script>"}), 422)
    assert_error(client.post(SCENE, json={"location": "Tavern", "timeOfDay": "Night"}), 422)
    assert_error(client.post(SCENE, json=["Tavern"]), 422)
    assert_error(
        client.post(SCENE, content=b"{not json", headers={"content-type": "application/json"}),
        422,
    )
    assert client.get("/api/v1/scenes/cache/stats").json()["total_entries"] == 0
