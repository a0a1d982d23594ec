"""Character create/update with `image_path` / `model_path` URLs (seed 004's model): fetched
under the source policy from a loopback server the settings allow-list, sniffed, stored."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.apps.bestiary.conftest import TROLL, box_glb, mesh_bytes, png, reset_app, stored_keys
from tests.builders import assert_error, auth_headers, register_user
from worldbase.settings import Settings

LIMIT = 256 * 1024


@dataclass
class Origin:
    """A loopback file server; `hits` counts the requests per path."""

    base: str
    closed: str  # an allow-listed address where nothing listens
    hits: dict[str, int] = field(default_factory=dict)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    files: dict[str, tuple[str, bytes]] = {
        "/troll.png": ("image/png", png(80, 60)),
        "/troll.glb": ("model/gltf-binary", box_glb()),
        "/troll.obj": ("text/plain", mesh_bytes("obj")),
        "/notes.txt": ("text/plain", b"not a picture, not a mesh " * 10),
        "/huge.png": ("image/png", b"\x89PNG" + b"\0" * (LIMIT + 10)),
        "/empty": ("text/plain", b""),
    }
    hits: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits[self.path] = hits.get(self.path, 0) + 1
            if self.path == "/slow.png":
                time.sleep(1.5)
            if self.path.startswith("/to/"):
                self.send_response(302)
                self.send_header("Location", self.path.removeprefix("/to"))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/to-metadata":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            found = files.get(self.path)
            if found is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            media_type, body = found
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield Origin(base, f"http://127.0.0.1:{_closed_port()}", hits)
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Site:
    client: TestClient
    admin: dict[str, str]
    user: dict[str, str]
    origin: Origin


@pytest.fixture
def site(
    origin: Origin,
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
) -> Site:
    settings = make_settings(
        worldbase_source_allowlist=[origin.base + "/", origin.closed + "/"],
        bestiary_fetch_timeout=0.5,
        worldbase_max_body_bytes=LIMIT,
    )
    client = app_factory(settings)
    reset_app(client)
    _, admin = register_user(client, admin=True)
    _, user = register_user(client)
    return Site(client, auth_headers(admin), auth_headers(user), origin)


def test_create_and_update_fetch_and_store_urls(site: Site) -> None:
    client, base = site.client, site.origin.base
    body = TROLL | {"image_path": f"{base}/troll.png", "model_path": f"{base}/troll.glb"}
    created = client.post("/api/characters", json=body, headers=site.admin)
    assert created.status_code == 201, created.text
    character = created.json()
    cid = character["id"]
    url = f"/api/characters/{cid}"
    assert character["image_path"].startswith(f"bestiary/characters/{cid}/image-")
    assert character["image_path"].endswith(".webp")
    assert character["thumbnail_path"].startswith(f"bestiary/characters/{cid}/thumb-")
    assert character["model_path"].startswith(f"bestiary/characters/{cid}/model-")
    assert character["image_url"] == f"{url}/image" and character["model_url"] == f"{url}/model"
    assert client.get(f"{url}/image").headers["content-type"] == "image/webp"
    assert client.get(f"{url}/model").content[:4] == b"glTF"
    assert set(stored_keys(client, f"bestiary/characters/{cid}/")) == {
        character["image_path"],
        character["thumbnail_path"],
        *(
            character["model_path"].replace(".glb", suffix)
            for suffix in (".glb", ".lod1.glb", ".lod2.glb", ".draco.glb", ".lod1.draco.glb")
        ),
        character["model_path"].replace(".glb", ".lod2.draco.glb"),
    }

    # Sending a character back as it was read changes nothing and fetches nothing.
    hits = dict(site.origin.hits)
    same = {"image_path": character["image_path"], "model_path": character["model_path"]}
    unchanged = client.put(url, json=same | {"level": 25}, headers=site.admin)
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json()["model_path"] == character["model_path"]
    assert site.origin.hits == hits

    # Another model by URL (an OBJ, through a redirect): replaced, the old file removed.
    replaced = client.put(url, json={"model_path": f"{base}/to/troll.obj"}, headers=site.admin)
    assert replaced.status_code == 200, replaced.text
    new_model = replaced.json()["model_path"]
    assert new_model != character["model_path"] and new_model.endswith(".glb")
    assert replaced.json()["image_path"] == character["image_path"]
    assert not [k for k in stored_keys(client) if k.startswith(character["model_path"][:-4])]
    assert client.get(url).json()["model_path"] == new_model  # the cached copy was dropped

    # null removes the portrait (with its thumbnail) and the model.
    cleared = client.put(url, json={"image_path": None, "model_path": None}, headers=site.admin)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["image_path"] is None and cleared.json()["thumbnail_path"] is None
    assert cleared.json()["model_path"] is None and cleared.json()["model_url"] is None
    assert stored_keys(client, f"bestiary/characters/{cid}/") == []
    assert_error(client.get(f"{url}/image"), 404)


@pytest.mark.parametrize(
    ("field", "path", "code"),
    [
        ("image_path", "{closed}/troll.png", 502),  # nothing listens
        ("image_path", "{base}/missing.png", 502),  # the source answers 404
        ("model_path", "{base}/slow.png", 504),
        ("image_path", "http://127.0.0.1:9/troll.png", 403),  # loopback, not allow-listed
        ("image_path", "http://localhost:9/troll.png", 403),  # a name: checked at connect
        ("model_path", "http://169.254.169.254/latest/meta-data/", 403),
        ("image_path", "http://10.0.0.7/troll.png", 403),
        ("image_path", "{base}/to-metadata", 403),  # a redirect hop is checked too
        ("image_path", "{base}/notes.txt", 422),  # sniffed: not an image
        ("model_path", "{base}/notes.txt", 422),  # not a mesh
        ("image_path", "{base}/troll.glb", 422),
        ("image_path", "{base}/huge.png", 422),  # over WORLDBASE_MAX_BODY_BYTES
        ("image_path", "{base}/empty", 422),
        ("image_path", "file:///etc/passwd", 422),
        ("model_path", "bestiary/characters/1/model-0.glb", 422),  # not ours, not a URL
        ("image_path", "ftp://example.org/troll.png", 422),
    ],
)
def test_bad_sources_are_refused_and_change_nothing(
    site: Site, field: str, path: str, code: int
) -> None:
    client = site.client
    source = path.format(base=site.origin.base, closed=site.origin.closed)
    body = TROLL | {"name": "Refused", field: source}
    error = assert_error(client.post("/api/characters", json=body, headers=site.admin), code)
    if code != 422 or "://" in source:
        assert field in error["message"] or error["code"] == 403
    assert client.get("/api/characters").json()["total"] == 0

    character = client.post("/api/characters", json=TROLL, headers=site.admin).json()
    url = f"/api/characters/{character['id']}"
    assert_error(client.put(url, json={field: source, "level": 3}, headers=site.admin), code)
    assert client.get(url).json()["level"] == 24  # nothing changed
    assert stored_keys(client) == []


@pytest.mark.parametrize("who", ["user", "anonymous"])
def test_only_admins_make_the_server_fetch(site: Site, who: str) -> None:
    client, base = site.client, site.origin.base
    headers = site.user if who == "user" else {}
    code = 403 if who == "user" else 401
    source = f"{base}/troll.png?{who}"
    body = TROLL | {"image_path": source}
    assert_error(client.post("/api/characters", json=body, headers=headers), code)
    character = client.post("/api/characters", json=TROLL, headers=site.admin).json()
    url = f"/api/characters/{character['id']}"
    assert_error(client.put(url, json={"image_path": source}, headers=headers), code)
    assert not [p for p in site.origin.hits if p.endswith(f"?{who}")]
