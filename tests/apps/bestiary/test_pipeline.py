"""End to end: 24 rendered photos of a textured object -> the real pycolmap pipeline -> a mesh
whose shape matches the object's after scale alignment.

Slow (~20-40 s on 2 cores); it runs on both backends all the same, so the served run takes
the real pipeline through Redis jobs and S3 storage too.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import trimesh

from tests.apps.bestiary.conftest import Cast, wait_for
from tests.apps.bestiary.views import RADII, views

pytestmark = [pytest.mark.slow]


def _horizontal_extents(vertices: np.ndarray) -> list[float]:
    """Extents along the principal axes of the ground plane (the mesh is Y-up)."""
    flat = vertices[:, [0, 2]] - vertices[:, [0, 2]].mean(axis=0)
    _, axes = np.linalg.eigh(np.cov(flat.T))
    projected = flat @ axes
    return sorted((projected.max(axis=0) - projected.min(axis=0)).tolist(), reverse=True)


def test_rendered_views_reconstruct_the_object(cast: Cast) -> None:
    client, user = cast.client, cast.as_("owner")
    photos = views(24)
    files = [("files", (v.name, v.png, "image/png")) for v in photos]
    upload = client.post("/api/reconstruct/upload", files=files, headers=user)
    assert upload.status_code == 201, upload.text
    body = {"upload_id": upload.json()["upload_id"], "options": {"quality": "medium"}}
    job_id = client.post("/api/reconstruct/process", json=body, headers=user).json()["job_id"]
    status = wait_for(client, f"/api/reconstruct/status/{job_id}", user, timeout=180)
    assert status["status"] == "completed", status
    stats = status["stats"]
    assert stats["registered_images"] >= 20  # most views register
    assert stats["ground_plane"] is True and stats["meshing"] == "poisson"
    assert set(stats["stage_seconds"]) == {"features", "matching", "mapping", "meshing"}
    result = client.get(status["result_url"], headers=user)
    mesh = trimesh.load(io.BytesIO(result.content), file_type="glb", force="mesh")
    assert len(mesh.faces) > 500
    # SfM has no scale: align the longest horizontal extent with the ellipsoid's (2 x 1.0).
    major, minor = _horizontal_extents(np.asarray(mesh.vertices))
    scale = 2 * RADII[0] / major
    assert minor * scale == pytest.approx(2 * RADII[1], rel=0.15)
    # The cameras look down on it: at least most of the upper half (above the equator) is
    # seen, and nothing rises above the object's whole height (2 x 0.55).
    height = float(mesh.vertices[:, 1].max()) * scale
    assert 0.6 * RADII[2] < height < 2.1 * RADII[2]
    # The result becomes a character's model.
    character = cast.character()
    attach = client.post(
        f"/api/reconstruct/result/{job_id}/attach",
        json={"character_id": character["id"]},
        headers=cast.as_("admin"),
    )
    assert attach.status_code == 200, attach.text
    assert client.get(f"/api/characters/{character['id']}/model").status_code == 200
