"""The demo bestiary: characters with stored GLB models; seeding twice changes nothing."""

from __future__ import annotations

import io

import trimesh
from fastapi.testclient import TestClient

from tests.builders import run_db
from worldbase.apps.bestiary.seed import BESTIARY, seed_demo


def test_seed_demo_loads_characters_with_models_once(client: TestClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    assert "created 5 characters" in run_db(client, seed_demo, settings=settings)
    assert "already there" in run_db(client, seed_demo, settings=settings)
    page = client.get("/api/characters?limit=50").json()
    assert page["total"] == len(BESTIARY) == 5
    for character in page["items"]:
        model = client.get(character["model_url"])
        assert model.status_code == 200
        mesh = trimesh.load(io.BytesIO(model.content), file_type="glb", force="mesh")
        assert len(mesh.faces) > 1000
        assert mesh.bounds[0][1] >= -1e-6  # standing on the ground, Y up
