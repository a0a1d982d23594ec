"""Exports: a job per new (character, format, model); identical requests reuse the file."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient

from tests.apps.bestiary.conftest import CALLERS, Cast, wait_for
from tests.builders import assert_error, register_user
from worldbase.settings import Settings


def _export(cast: Cast, character_id: int, fmt: str, who: str = "owner") -> dict[str, object]:
    response = cast.client.post(
        "/api/export", json={"character_id": character_id, "format": fmt}, headers=cast.as_(who)
    )
    assert response.status_code in (200, 202), response.text
    body = dict(response.json())
    done = wait_for(cast.client, f"/api/export/status/{body['id']}", {})
    assert done["status"] == "completed", done
    return dict(done)


@pytest.mark.parametrize("fmt", ["obj", "ply", "stl", "gltf", "glb"])
def test_each_format_downloads_a_readable_mesh(cast: Cast, fmt: str) -> None:
    character = cast.with_model()
    export = _export(cast, character["id"], fmt)
    assert export["download_url"] == f"/api/export/{export['id']}"
    download = cast.client.get(str(export["download_url"]))
    assert download.status_code == 200
    assert "frost-troll." in download.headers["content-disposition"]
    data = download.content
    if fmt == "obj":
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        assert {"frost-troll.obj", "frost-troll.mtl"} <= names
        assert any(n.endswith(".png") for n in names)  # the texture
        mesh = trimesh.load(io.BytesIO(archive.read("frost-troll.obj")), file_type="obj")
    else:
        if fmt == "gltf":
            assert json.loads(data)["asset"]["version"] == "2.0"
        mesh = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh")
    assert sorted(mesh.extents.round(3)) == [0.5, 1.0, 2.0]


def test_identical_requests_reuse_the_export_until_the_model_changes(cast: Cast) -> None:
    character = cast.with_model()
    first = _export(cast, character["id"], "stl")
    again = cast.client.post(
        "/api/export",
        json={"character_id": character["id"], "format": "stl"},
        headers=cast.as_("other"),
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert again.json()["reused"] is True
    other_format = _export(cast, character["id"], "ply")
    assert other_format["id"] != first["id"]
    cast.client.put(
        f"/api/characters/{character['id']}/model",
        files={"file": ("m.stl", trimesh.creation.icosphere().export(file_type="stl"))},
        headers=cast.as_("admin"),
    )
    fresh = _export(cast, character["id"], "stl")
    assert fresh["id"] != first["id"]


@pytest.mark.parametrize("who", CALLERS)
def test_exports_are_public_to_read_and_need_a_user_to_create(cast: Cast, who: str) -> None:
    character = cast.with_model()
    export = _export(cast, character["id"], "glb")
    client, headers = cast.client, cast.as_(who)
    assert client.get(f"/api/export/status/{export['id']}", headers=headers).status_code == 200
    assert client.get(f"/api/export/{export['id']}", headers=headers).status_code == 200
    create = client.post(
        "/api/export", json={"character_id": character["id"], "format": "glb"}, headers=headers
    )
    if who == "anonymous":
        assert_error(create, 401)
    else:
        assert create.status_code == 200 and create.json()["id"] == export["id"]


def test_bad_export_requests(cast: Cast) -> None:
    bare = cast.character()
    client, user = cast.client, cast.as_("owner")
    no_model = client.post(
        "/api/export", json={"character_id": bare["id"], "format": "obj"}, headers=user
    )
    assert "no 3D model" in assert_error(no_model, 409)["message"]
    missing = client.post(
        "/api/export", json={"character_id": 999999, "format": "obj"}, headers=user
    )
    assert_error(missing, 404)
    for body in (
        {"character_id": bare["id"], "format": "fbx"},
        {"character_id": bare["id"]},
        {"character_id": "x", "format": "obj"},
        {"character_id": bare["id"], "format": "obj", "extra": 1},
    ):
        assert_error(client.post("/api/export", json=body, headers=user), 422)
    assert_error(client.get("/api/export/999999"), 404)
    assert_error(client.get("/api/export/status/999999"), 404)
    assert_error(client.get("/api/export/status/abc"), 422)


def test_obj_of_a_vertex_coloured_model_keeps_its_colours() -> None:
    from worldbase.apps.bestiary import meshes
    from worldbase.apps.bestiary.seed import BESTIARY

    glb = BESTIARY[0][1]()
    archive = zipfile.ZipFile(io.BytesIO(meshes.convert(glb, "obj", name="troll").data))
    assert sorted(archive.namelist()) == ["troll.mtl", "troll.obj"]
    text = archive.read("troll.obj").decode()
    first_vertex = next(line for line in text.splitlines() if line.startswith("v "))
    assert len(first_vertex.split()) == 7  # x y z r g b
    original = trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh")
    back = trimesh.load(io.BytesIO(text.encode()), file_type="obj", force="mesh")
    assert np.allclose(back.extents, original.extents, atol=1e-5)


@pytest.mark.parametrize("character_id", [2**31, 2**63 - 1, 2**63, 10**30])
def test_ids_beyond_the_database_range_are_422(cast: Cast, character_id: int) -> None:
    client, owner = cast.client, cast.as_("owner")
    body = {"character_id": character_id, "format": "obj"}
    assert_error(client.post("/api/export", json=body, headers=owner), 422)
    assert_error(client.get(f"/api/characters/{character_id}"), 422)
    assert_error(client.get(f"/api/export/status/{character_id}"), 422)


def test_exports_count_against_the_heavy_job_limit(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """Issue 18 item 8: a conversion is a heavy job; two queued, the third is 429 with
    Retry-After and records nothing; another user keeps their own allowance."""
    # No consumer and a queue of its own: accepted exports stay queued, as behind a busy worker.
    client = app_factory(
        make_settings(
            worldbase_inline_worker=False,
            worldbase_namespace=f"heavy-{uuid.uuid4().hex[:8]}",
            worldbase_max_heavy_jobs_per_user=2,
        )
    )
    users: dict[str, dict[str, Any]] = {}
    tokens: dict[str, str] = {}
    for who in ("owner", "other"):
        users[who], tokens[who] = register_user(client)
    users["admin"], tokens["admin"] = register_user(client, admin=True)
    cast = Cast(client, users, tokens)
    character = cast.with_model()

    def export(fmt: str, who: str = "owner") -> Any:
        body = {"character_id": character["id"], "format": fmt}
        return client.post("/api/export", json=body, headers=cast.as_(who))

    first, second = export("obj"), export("ply")
    assert (first.status_code, second.status_code) == (202, 202), first.text
    refused = export("stl")
    body = assert_error(refused, 429)
    assert "WORLDBASE_MAX_HEAVY_JOBS_PER_USER" in body["message"]
    assert int(refused.headers["Retry-After"]) > 0
    # An identical export already queued costs nothing: reused, even at the limit.
    assert export("obj").status_code == 200
    other = export("glb", "other")
    assert other.status_code == 202, other.text
    # Nothing was recorded for the refused request: the same export is new once there is room.
    mine = client.get("/api/jobs?kind=bestiary.export", headers=cast.as_("owner")).json()
    assert mine["total"] == 2  # the refused request queued nothing
    job_id = mine["items"][0]["id"]
    cancel = client.post(f"/api/jobs/{job_id}/cancel", headers=cast.as_("owner"))
    assert cancel.status_code == 200, cancel.text
    again = export("stl")
    assert again.status_code == 202 and again.json()["reused"] is False, again.text
