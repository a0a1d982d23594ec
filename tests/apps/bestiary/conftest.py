"""Builders for the bestiary tests: a cast of callers, characters, model files, job waits."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient
from PIL import Image

from tests.builders import auth_headers, register_user
from tests.conftest import base_settings, truncate_all

CALLERS = ("owner", "other", "anonymous", "admin")
TROLL = {
    "name": "Frost Troll",
    "race": "Troll",
    "level": 24,
    "location": "The Throat of the World",
    "faction": "Creatures",
    "difficulty": "hard",
    "description": "A white-furred troll; regenerates quickly.",
    "stats": {"health": 580},
    "skills": {"unarmed": 70},
    "combat": {"weakness": "fire"},
}


@dataclass
class Cast:
    """`owner` (a signed-in user who starts jobs), `other` (another user), an admin;
    `as_(who)` gives the headers (anonymous: none)."""

    client: TestClient
    users: dict[str, dict[str, Any]]
    tokens: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return auth_headers(self.tokens[who]) if who in self.tokens else {}

    def character(self, **values: Any) -> dict[str, Any]:
        response = self.client.post(
            "/api/characters", json=TROLL | values, headers=self.as_("admin")
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def with_model(self, data: bytes | None = None, **values: Any) -> dict[str, Any]:
        character = self.character(**values)
        response = self.client.put(
            f"/api/characters/{character['id']}/model",
            files={"file": ("m.bin", data or box_glb(), "application/octet-stream")},
            headers=self.as_("admin"),
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def _module_client(
    served_overrides: dict[str, Any],
    migrated_served: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    """One app per test module (starting one costs ~1-2 s); tests still start from empty
    tables, cache and storage (`client` below)."""
    from worldbase.app import create_app

    settings = base_settings(tmp_path_factory.mktemp("bestiary") / "data", **served_overrides)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


async def _reset(services: Any) -> None:
    """Empty this app's tables and the jobs (users stay for the module), cache, limits."""
    from sqlalchemy import delete

    from worldbase.apps.bestiary import models
    from worldbase.core.models import Job

    async with services.db.sessionmaker() as session:
        for table in (
            models.Favorite,
            models.ExportJob,
            models.ReconstructionJob,
            models.ReconstructionUpload,
            models.Character,
            Job,
        ):
            await session.execute(delete(table))
        await session.commit()
    await services.cache.clear()
    await services.limiter.reset()


@pytest.fixture(scope="module")
def _module_cast(_module_client: TestClient) -> Cast:
    """Users are made once per module (password hashing is the slow part of a test's set-up)."""
    client = _module_client
    client.portal.call(truncate_all, client.app.state.services)  # type: ignore[union-attr, attr-defined]
    users: dict[str, dict[str, Any]] = {}
    tokens: dict[str, str] = {}
    for who in ("owner", "other"):
        users[who], tokens[who] = register_user(client, f"{who}@example.org")
    users["admin"], tokens["admin"] = register_user(client, "admin@example.org", admin=True)
    return Cast(client, users, tokens)


@pytest.fixture
def client(_module_client: TestClient, _module_cast: Cast) -> TestClient:
    """Overrides the suite's per-test app: the module's app, with this app's tables empty."""
    _module_client.portal.call(_reset, _module_client.app.state.services)  # type: ignore[union-attr, attr-defined]
    return _module_client


@pytest.fixture
def cast(client: TestClient, _module_cast: Cast) -> Cast:
    return _module_cast


@pytest.fixture(autouse=True)
def _empty_storage(request: pytest.FixtureRequest) -> None:
    """The served run shares one bucket across the session: start from an empty app prefix."""
    if "client" not in request.fixturenames:
        return
    client = request.getfixturevalue("client")
    storage = client.app.state.services.storage

    async def clear() -> None:
        for key in [obj.key async for obj in storage.list("bestiary/")]:
            await storage.delete(key)

    client.portal.call(clear)


def reset_app(client: TestClient) -> None:
    """Empty the tables, cache, rate-limit counts and this app's storage of an app made with
    `app_factory` (the served run shares one database, Redis and bucket)."""
    services = client.app.state.services  # type: ignore[attr-defined]
    client.portal.call(truncate_all, services)  # type: ignore[union-attr]

    async def clear() -> None:
        for key in [obj.key async for obj in services.storage.list("bestiary/")]:
            await services.storage.delete(key)

    client.portal.call(clear)  # type: ignore[union-attr]


def stored_keys(client: TestClient, prefix: str = "bestiary/") -> list[str]:
    storage = client.app.state.services.storage  # type: ignore[attr-defined]

    async def collect() -> list[str]:
        return [obj.key async for obj in storage.list(prefix)]

    return client.portal.call(collect)  # type: ignore[union-attr]


def textured_box(faces: int = 12) -> trimesh.Trimesh:
    """A box (or a subdivided sphere with about `faces` triangles) with a UV texture."""
    if faces <= 12:
        mesh = trimesh.creation.box((1.0, 2.0, 0.5))
    else:
        mesh = trimesh.creation.icosphere(subdivisions=1)
        while len(mesh.faces) < faces:
            mesh = mesh.subdivide()
    uv = (mesh.vertices[:, :2] - mesh.vertices[:, :2].min(0)) / np.ptp(mesh.vertices[:, :2], 0)
    pixels = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(pixels))
    return mesh


def box_glb() -> bytes:
    data: bytes = trimesh.Scene(textured_box()).export(file_type="glb")
    return data


def mesh_bytes(file_type: str) -> bytes:
    data = trimesh.creation.box((1.0, 2.0, 0.5)).export(file_type=file_type)
    return data.encode() if isinstance(data, str) else bytes(data)


def png(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def wait_for(client: TestClient, url: str, headers: dict[str, str], *, timeout: float = 60) -> Any:
    """Poll a status URL until its status is final."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(url, headers=headers).json()
        if body["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)
