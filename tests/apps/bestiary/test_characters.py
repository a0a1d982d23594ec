"""Characters: public cached reads, admin writes, filters, portraits and 3D models."""

from __future__ import annotations

import io

import pytest
import trimesh
from PIL import Image

from tests.apps.bestiary.conftest import CALLERS, TROLL, Cast, box_glb, mesh_bytes, png, stored_keys
from tests.bombs import jpeg_bomb, png_bomb, webp_bomb
from tests.builders import assert_error

WRITE_STATUS = {"owner": 403, "other": 403, "anonymous": 401}


def test_list_filters_sorts_and_pages(cast: Cast) -> None:
    cast.character(name="Frost Troll", race="Troll", level=24, faction="Creatures")
    cast.character(name="Cave Troll", race="Troll", level=14, description="Lives in caves")
    cast.character(
        name="Draugr",
        race="Draugr",
        level=40,
        faction="Undead",
        location="Barrows",
        description=None,
    )
    client = cast.client
    names = lambda query: [c["name"] for c in client.get(f"/api/characters{query}").json()["items"]]  # noqa: E731
    assert names("") == ["Cave Troll", "Draugr", "Frost Troll"]
    assert names("?race=Troll&sort=-level") == ["Frost Troll", "Cave Troll"]
    assert names("?level_min=15&level_max=40&sort=level") == ["Frost Troll", "Draugr"]
    assert names("?faction=Undead") == ["Draugr"] == names("?location=Barrows")
    assert names("?q=CAVES") == ["Cave Troll"]  # description, case-insensitive
    assert names("?q=troll") == ["Cave Troll", "Frost Troll"]
    assert names("?q=100%25") == []  # LIKE wildcards are literal
    page = client.get("/api/characters?limit=1&offset=1&sort=name").json()
    assert page["total"] == 3 and [c["name"] for c in page["items"]] == ["Draugr"]
    for bad in ("?limit=0", "?limit=201", "?level_min=-1", "?sort=power", "?offset=-1"):
        assert_error(client.get(f"/api/characters{bad}"), 422)


@pytest.mark.parametrize("who", CALLERS)
def test_anyone_reads_only_admins_write(cast: Cast, who: str) -> None:
    character = cast.character()
    client, headers = cast.client, cast.as_(who)
    url = f"/api/characters/{character['id']}"
    read = client.get(url, headers=headers)
    assert read.status_code == 200 and read.json()["name"] == "Frost Troll"
    assert client.get("/api/characters", headers=headers).json()["total"] == 1
    writes = [
        client.post("/api/characters", json=TROLL, headers=headers),
        client.put(url, json={"level": 30}, headers=headers),
        client.put(f"{url}/image", files={"file": ("a.png", png())}, headers=headers),
        client.put(f"{url}/model", files={"file": ("a.glb", box_glb())}, headers=headers),
        client.delete(url, headers=headers),
    ]
    if who == "admin":
        assert [r.status_code for r in writes] == [201, 200, 200, 200, 204]
        assert_error(client.get(url), 404)
    else:
        for response in writes:
            assert_error(response, WRITE_STATUS[who])
        assert client.get(url).json()["level"] == 24
        assert client.get("/api/characters").json()["total"] == 1


def test_cache_is_invalidated_on_every_write(cast: Cast) -> None:
    character = cast.character()
    client, url = cast.client, f"/api/characters/{character['id']}"
    assert client.get(url).json()["level"] == 24  # cached now
    assert client.get("/api/characters?race=Troll").json()["total"] == 1
    client.put(url, json={"level": 31, "race": "Ice Troll"}, headers=cast.as_("admin"))
    assert client.get(url).json()["level"] == 31
    assert client.get("/api/characters?race=Troll").json()["total"] == 0
    client.put(f"{url}/model", files={"file": ("a", box_glb())}, headers=cast.as_("admin"))
    assert client.get(url).json()["model_url"] == f"{url}/model"
    client.delete(url, headers=cast.as_("admin"))
    assert_error(client.get(url), 404)
    assert client.get("/api/characters").json()["total"] == 0


def test_update_is_partial_and_validated(cast: Cast) -> None:
    character = cast.character()
    client, admin = cast.client, cast.as_("admin")
    url = f"/api/characters/{character['id']}"
    updated = client.put(url, json={"description": None, "stats": {"health": 1}}, headers=admin)
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["description"] is None and body["stats"] == {"health": 1}
    assert body["name"] == "Frost Troll" and body["level"] == 24
    for bad in ({"name": None}, {"name": ""}, {"level": -3}, {"power": 9}, {"stats": [1]}):
        assert_error(client.put(url, json=bad, headers=admin), 422)
    for bad in ({}, {"name": "x" * 256}, {"name": "A", "level": "high"}):
        assert_error(client.post("/api/characters", json=bad, headers=admin), 422)
    assert_error(client.put("/api/characters/999999", json={"level": 1}, headers=admin), 404)
    assert_error(client.get("/api/characters/0"), 422)
    assert_error(client.get("/api/characters/abc"), 422)


def test_portrait_is_stored_as_webp_with_a_thumbnail(cast: Cast) -> None:
    character = cast.character()
    client, admin = cast.client, cast.as_("admin")
    url = f"/api/characters/{character['id']}"
    response = client.put(f"{url}/image", files={"file": ("x.bin", png(640, 480))}, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image_path"].endswith(".webp") and body["thumbnail_url"].endswith("thumbnail")
    full = client.get(f"{url}/image")
    assert full.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(full.content)).size == (640, 480)
    thumb = client.get(f"{url}/image?size=thumbnail")
    assert Image.open(io.BytesIO(thumb.content)).size == (200, 200)
    # A new picture replaces the old files.
    client.put(f"{url}/image", files={"file": ("y", png(seed=3))}, headers=admin)
    assert len(stored_keys(client, f"bestiary/characters/{character['id']}/")) == 2


def test_bad_pictures_and_models_change_nothing(cast: Cast) -> None:
    character = cast.character()
    client, admin = cast.client, cast.as_("admin")
    url = f"/api/characters/{character['id']}"
    for data in (b"", b"GIF89a-not-really", b"%PDF-1.4 hello", mesh_bytes("stl")):
        assert_error(
            client.put(f"{url}/image", files={"file": ("a.png", data)}, headers=admin), 422
        )
    bad_models = (
        b"",
        png(),
        b"glTF\x02\x00\x00\x00garbage",
        b"solid x\nfacet normal 0 0 1\nendsolid",
        b"ply\nformat ascii 1.0\nelement vertex 1\nend_header\n1 2\n",
        b"v 1 2 3\nv 1 2\nf 1 2 3\n",
    )
    for data in bad_models:
        response = client.put(f"{url}/model", files={"file": ("m.glb", data)}, headers=admin)
        assert_error(response, 422)
    assert_error(client.get(f"{url}/image"), 404)
    assert_error(client.get(f"{url}/model"), 404)
    assert stored_keys(client) == []
    assert client.get(url).json()["model_path"] is None


@pytest.mark.parametrize("file_type", ["stl", "obj", "ply", "off", "glb"])
def test_models_of_any_format_are_stored_as_glb(cast: Cast, file_type: str) -> None:
    character = cast.character()
    client = cast.client
    url = f"/api/characters/{character['id']}"
    data = mesh_bytes(file_type)
    response = client.put(f"{url}/model", files={"file": ("m", data)}, headers=cast.as_("admin"))
    assert response.status_code == 200, response.text
    model = client.get(f"{url}/model")
    assert model.status_code == 200 and model.headers["content-type"] == "model/gltf-binary"
    scene = trimesh.load(io.BytesIO(model.content), file_type="glb", force="scene")
    assert sorted(scene.extents.round(3)) == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("who", CALLERS)
def test_anyone_gets_a_portrait_and_a_model(cast: Cast, who: str) -> None:
    character = cast.with_model()
    url = f"/api/characters/{character['id']}"
    cast.client.put(f"{url}/image", files={"file": ("p", png())}, headers=cast.as_("admin"))
    headers = cast.as_(who)
    for path, kind in (("/model", "model/gltf-binary"), ("/image", "image/webp")):
        response = cast.client.get(url + path, headers=headers)
        assert response.status_code == 200 and response.headers["content-type"] == kind
        etag = response.headers["etag"]
        again = cast.client.get(url + path, headers=headers | {"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
    assert_error(cast.client.get("/api/characters/999999/model", headers=headers), 404)


def test_decompression_bombs_are_422_and_change_nothing(cast: Cast) -> None:
    character = cast.character()
    client, admin = cast.client, cast.as_("admin")
    url = f"/api/characters/{character['id']}/image"
    for name, bomb in (("a.png", png_bomb()), ("b.webp", webp_bomb()), ("c.jpg", jpeg_bomb())):
        body = assert_error(client.put(url, files={"file": (name, bomb)}, headers=admin), 422)
        assert "too large" in body["message"]
    assert_error(client.get(url), 404)
    assert stored_keys(client) == []
