"""Levels of detail of a character's model (seed 004's performance section): made on upload,
served with `?lod=`, textured, replaced and deleted with the model."""

from __future__ import annotations

import io
from typing import Any

import pytest
import trimesh

from tests.apps.bestiary.conftest import CALLERS, Cast, stored_keys, textured_box
from tests.builders import assert_error


def _load(data: bytes) -> trimesh.Trimesh:
    scene: Any = trimesh.load(io.BytesIO(data), file_type="glb", force="scene")
    (mesh,) = scene.geometry.values()
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


def _upload(cast: Cast, faces: int) -> dict[str, Any]:
    glb: bytes = trimesh.Scene(textured_box(faces)).export(file_type="glb")
    return cast.with_model(glb)


@pytest.mark.parametrize("who", CALLERS)
def test_levels_are_made_on_upload_and_served_by_query(cast: Cast, who: str) -> None:
    character = _upload(cast, 5000)
    client, url = cast.client, f"/api/characters/{character['id']}/model"
    model = character["model_path"]
    stem = model.removesuffix(".glb")
    assert {f"{stem}.lod1.glb", f"{stem}.lod2.glb"} <= set(stored_keys(client))

    headers = cast.as_(who)
    full = client.get(url, headers=headers)
    assert full.status_code == 200 and full.headers["content-type"] == "model/gltf-binary"
    assert client.get(f"{url}?lod=0", headers=headers).content == full.content
    faces = len(_load(full.content).faces)
    sizes = [len(full.content)]
    for level, ratio in ((1, 0.5), (2, 0.2)):
        response = client.get(f"{url}?lod={level}", headers=headers)
        assert response.status_code == 200, response.text
        mesh = _load(response.content)
        assert abs(len(mesh.faces) - faces * ratio) <= faces * 0.05
        assert isinstance(mesh.visual, trimesh.visual.TextureVisuals)  # still textured
        assert mesh.visual.uv is not None and len(mesh.visual.uv) == len(mesh.vertices)
        assert (mesh.bounds.round(2) == _load(full.content).bounds.round(2)).all()
        etag = response.headers["etag"]
        again = client.get(f"{url}?lod={level}", headers=headers | {"If-None-Match": etag})
        assert again.status_code == 304
        sizes.append(len(response.content))
    assert sizes == sorted(sizes, reverse=True)


def test_bad_levels_and_missing_models(cast: Cast) -> None:
    character = _upload(cast, 100)
    url = f"/api/characters/{character['id']}/model"
    for bad in ("3", "-1", "x", "1.5"):
        assert_error(cast.client.get(f"{url}?lod={bad}"), 422)
    bare = cast.character(name="No model")
    assert_error(cast.client.get(f"/api/characters/{bare['id']}/model?lod=1"), 404)
    assert_error(cast.client.get("/api/characters/999999/model?lod=1"), 404)


def test_levels_follow_the_model(cast: Cast) -> None:
    client, admin = cast.client, cast.as_("admin")
    character = _upload(cast, 500)
    first = character["model_path"].removesuffix(".glb")
    url = f"/api/characters/{character['id']}"

    # A model stored before levels existed: its level is made on first request.
    storage: Any = client.app.state.services.storage  # type: ignore[attr-defined]
    client.portal.call(storage.delete, f"{first}.lod1.glb")  # type: ignore[union-attr]
    made = client.get(f"{url}/model?lod=1")
    full = len(_load(client.get(f"{url}/model").content).faces)
    assert made.status_code == 200 and len(_load(made.content).faces) == full // 2
    assert f"{first}.lod1.glb" in stored_keys(client)

    glb: bytes = trimesh.Scene(textured_box(2000)).export(file_type="glb")
    replaced = client.put(f"{url}/model", files={"file": ("m.glb", glb)}, headers=admin)
    assert replaced.status_code == 200
    keys = stored_keys(client)
    assert not [k for k in keys if k.startswith(first)]  # the old model and its levels
    second = replaced.json()["model_path"].removesuffix(".glb")
    assert {f"{second}.glb", f"{second}.lod1.glb", f"{second}.lod2.glb"} <= set(keys)

    assert client.delete(url, headers=admin).status_code == 204
    assert not [k for k in stored_keys(client) if k.startswith(second)]
