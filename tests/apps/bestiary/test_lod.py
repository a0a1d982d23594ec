"""Levels of detail of a character's model (seed 004's performance section): made on upload,
served with `?lod=`, textured, replaced and deleted with the model."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
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
        assert (mesh.faces[:, 0] != mesh.faces[:, 1]).all()  # no collapsed slivers
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


def _draco_meshes(data: bytes) -> tuple[dict[str, Any], list[Any]]:
    """The glTF document of a Draco GLB and its decoded meshes (DracoPy)."""
    import json
    import struct

    import DracoPy

    magic, _, length = struct.unpack_from("<III", data, 0)
    assert magic == 0x46546C67 and length == len(data)
    size, kind = struct.unpack_from("<II", data, 12)
    assert kind == 0x4E4F534A
    document = json.loads(data[20 : 20 + size])
    bin_size, bin_kind = struct.unpack_from("<II", data, 20 + size)
    assert bin_kind == 0x004E4942
    binary = data[28 + size : 28 + size + bin_size]
    (buffer,) = document["buffers"]  # the BIN chunk is the buffer padded to 4 bytes
    assert bin_size % 4 == 0 and bin_size - 3 <= buffer["byteLength"] <= bin_size
    decoded = []
    for mesh in document["meshes"]:
        for primitive in mesh["primitives"]:
            ext = primitive["extensions"]["KHR_draco_mesh_compression"]
            view = document["bufferViews"][ext["bufferView"]]
            start = view["byteOffset"]
            decoded.append(DracoPy.decode(binary[start : start + view["byteLength"]]))
            for name in primitive["attributes"]:
                assert "bufferView" not in document["accessors"][primitive["attributes"][name]]
                assert name in ext["attributes"]
    return document, decoded


@pytest.mark.parametrize("level", [0, 1, 2])
def test_draco_compression_by_query(cast: Cast, level: int) -> None:
    character = _upload(cast, 5000)
    client, url = cast.client, f"/api/characters/{character['id']}/model?lod={level}"
    plain = client.get(url)
    packed = client.get(f"{url}&compression=draco")
    assert packed.status_code == 200 and packed.headers["content-type"] == "model/gltf-binary"
    assert len(packed.content) < len(plain.content) * 0.75  # the texture is not compressed
    assert packed.headers["etag"] != plain.headers["etag"]
    assert client.get(f"{url}&compression=none").content == plain.content

    mesh = _load(plain.content)
    document, (decoded,) = _draco_meshes(packed.content)
    assert "KHR_draco_mesh_compression" in document["extensionsRequired"]
    assert 0.98 * len(mesh.faces) <= len(decoded.faces) <= len(mesh.faces)
    assert np.allclose(np.asarray(decoded.points).min(0), mesh.bounds[0], atol=1e-3)
    assert np.allclose(np.asarray(decoded.points).max(0), mesh.bounds[1], atol=1e-3)
    assert decoded.tex_coord is not None  # the texture coordinates travel with it
    assert document["images"] and document["materials"]  # and the texture itself
    (primitive,) = document["meshes"][0]["primitives"]
    position = document["accessors"][primitive["attributes"]["POSITION"]]
    assert position["count"] == len(decoded.points)
    assert document["accessors"][primitive["indices"]]["count"] == decoded.faces.size
    assert_error(client.get(f"{url}&compression=zip"), 422)


def test_draco_variants_are_stored_and_made_when_missing(cast: Cast) -> None:
    character = _upload(cast, 500)
    client = cast.client
    stem = character["model_path"].removesuffix(".glb")
    keys = set(stored_keys(client))
    assert {f"{stem}.draco.glb", f"{stem}.lod1.draco.glb", f"{stem}.lod2.draco.glb"} <= keys
    storage: Any = client.app.state.services.storage  # type: ignore[attr-defined]
    client.portal.call(storage.delete, f"{stem}.lod2.draco.glb")  # type: ignore[union-attr]
    url = f"/api/characters/{character['id']}/model?lod=2&compression=draco"
    _, (decoded,) = _draco_meshes(client.get(url).content)
    faces = len(_load(client.get(url[: url.index("&")]).content).faces)
    assert 0.98 * faces <= len(decoded.faces) <= faces  # Draco drops degenerate triangles
    assert f"{stem}.lod2.draco.glb" in stored_keys(client)
