"""Demo data: a few images and a cached scene, loaded once however often seeding runs."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.builders import run_db
from worldbase.apps.dnd.seed import seed_demo


def test_seed_demo_is_idempotent(client: TestClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    first = run_db(client, seed_demo, settings=settings)
    assert first.startswith("3 demo images generated, cached")
    again = run_db(client, seed_demo, settings=settings)
    assert again == "0 demo images generated, kept the Tavern/Evening/Rain scene"
    stats = client.get("/api/v1/maintenance/stats").json()
    assert stats["images"]["total"] == 4 and stats["scene_cache"]["total_entries"] == 1
    scene = client.post(
        "/api/v1/scenes/generate",
        params={"location": "Tavern", "time_of_day": "Evening", "weather": "Rain"},
    )
    assert scene.json()["cached"] is True
