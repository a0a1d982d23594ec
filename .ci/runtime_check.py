"""The runtime check: what a user installs with `make run` works, end to end, over HTTP.

Run with the python of a venv made by the Makefile's `install` target (no dev extras):

    .venv-runtime/bin/python .ci/runtime_check.py

It runs `pip check`, imports every module under `worldbase`, then follows the README on a
temporary data dir (embedded defaults: `worldbase migrate`, `worldbase seed`, an admin by
`worldbase users create`, `worldbase serve` on loopback) and drives one real job of each
app over HTTP: samsyn (a GeoTIFF upload -> COG job -> a tile), habitats (a CSV import -> a
tile), dnd (an image generated, read back), osm (an .osm file import job), bestiary (a
reconstruction of rendered views -> attached to a character -> an export). Any failure
exits non-zero. Only the standard library and runtime dependencies are used: never pytest.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import pkgutil
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN = ("runtime-admin@example.org", "runtime-check-admin-pw")
USER = ("runtime-user@example.org", "runtime-check-user-pw")
JOB_TIMEOUT = 300.0


class CheckFailed(Exception):
    pass


def expect(condition: bool, what: str, response: httpx.Response | None = None) -> None:
    if not condition:
        extra = f": {response.status_code} {response.text[:500]}" if response is not None else ""
        raise CheckFailed(what + extra)


def step(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        def run(*args: Any) -> None:
            started = time.monotonic()
            fn(*args)
            print(f"  ok   {name} ({time.monotonic() - started:.1f} s)", flush=True)

        return run

    return wrap


# --- install -----------------------------------------------------------------------------------


def pip_check() -> None:
    subprocess.run([sys.executable, "-m", "pip", "check"], check=True)


def import_everything() -> int:
    # Each module imported as a user's process would: a missing runtime dependency of any
    # code path that imports at module level fails here.
    import worldbase

    count = 0
    for module in pkgutil.walk_packages(worldbase.__path__, "worldbase."):
        # Alembic's env.py and revisions are scripts run by Alembic (`worldbase migrate`
        # below runs them), not importable modules.
        if module.name.startswith("worldbase.migrations."):
            continue
        importlib.import_module(module.name)
        count += 1
    return count


# --- the server, as the README starts it ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(data_dir: Path) -> dict[str, str]:
    # Embedded defaults: nothing of the caller's configuration leaks in.
    prefixes = ("WORLDBASE_", "DATABASE_", "REDIS_", "STORAGE_", "AWS_", "JWT_", "GEMINI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["WORLDBASE_DATA_DIR"] = str(data_dir)
    return env


def worldbase(cwd: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run([str(BIN / "worldbase"), *args], cwd=cwd, env=env, check=True)


def wait_healthy(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"worldbase serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise CheckFailed(f"worldbase serve did not become healthy:\n{log.read_text()[-3000:]}")


# --- helpers -------------------------------------------------------------------------------------


def login(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    expect(response.status_code == 200, "login", response)
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def wait_status(
    client: httpx.Client, url: str, headers: dict[str, str], done: tuple[str, ...]
) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        response = client.get(url, headers=headers)
        expect(response.status_code == 200, f"GET {url}", response)
        body: dict[str, Any] = response.json()
        if body["status"] in (*done, "failed", "cancelled"):
            return body
        time.sleep(0.5)
    raise CheckFailed(f"{url} did not finish within {JOB_TIMEOUT:.0f} s")


def wait_job(client: httpx.Client, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    job = wait_status(client, f"/api/jobs/{job_id}", headers, ("succeeded",))
    expect(job["status"] == "succeeded", f"job {job_id} ({job.get('kind')}) ended {job}")
    return job


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)
    return x, y


def png_has_pixels(data: bytes) -> bool:
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    return bool((image[..., 3] > 0).any())


# --- one job of each app -------------------------------------------------------------------------


@step("samsyn: GeoTIFF upload -> COG job -> a tile")
def samsyn(client: httpx.Client, user: dict[str, str], tmp: Path) -> None:
    path = tmp / "depth.tif"
    data = (np.arange(300 * 200, dtype="float32").reshape(200, 300) % 250) - 200
    profile = {
        "driver": "GTiff",
        "width": 300,
        "height": 200,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:32631",
        "transform": from_origin(500_000, 5_770_000, 100, 100),  # around 3° E, 52° N
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    with path.open("rb") as f:
        response = client.post(
            "/api/layers/upload",
            data={"name": "Depth", "tile_params": '{"rescale": "-200,50"}'},
            files={"file": ("depth.tif", f, "image/tiff")},
            headers=user,
        )
    expect(response.status_code == 202, "GeoTIFF upload", response)
    job = wait_job(client, response.json()["job_id"], user)
    layer_id = job["result"]["layer_id"]
    x, y = tile_xy(3.218, 51.98, 12)
    tile = client.get(f"/api/layers/{layer_id}/tiles/12/{x}/{y}", headers=user)
    expect(tile.status_code == 200 and png_has_pixels(tile.content), "COG tile", tile)


HABITATS_CSV = """name,iucn_code,ecosystem_type,color_hex,geometry
Peat bog,5.4.1,wetland,#5B8DB8,"POLYGON ((10 50, 11 50, 11 51, 10 51, 10 50))"
"""


@step("habitats: CSV import -> a tile")
def habitats(client: httpx.Client, admin: dict[str, str], tmp: Path) -> None:
    response = client.post(
        "/habitats/import",
        files={"file": ("habitats.csv", HABITATS_CSV.encode(), "text/csv")},
        headers=admin,
    )
    expect(response.status_code == 201, "habitat CSV import", response)
    listed = client.get("/habitats", params={"q": "Peat bog"}, headers=admin).json()
    habitat = next(h for h in listed["items"] if h["iucn_code"] == "5.4.1")
    x, y = tile_xy(10.5, 50.5, 8)
    tile = client.get(f"/habitats/{habitat['id']}/tiles/8/{x}/{y}.png", headers=admin)
    expect(tile.status_code == 200 and png_has_pixels(tile.content), "habitat tile", tile)


@step("dnd: generate an image, read it back")
def dnd(client: httpx.Client, user: dict[str, str], tmp: Path) -> None:
    body = {
        "subject_type": "item",
        "subject_name": "Flame Tongue",
        "prompt": "A longsword wreathed in fire, glowing runes on the blade",
        "aspect_ratio": "1:1",
        "component": "item-card",
    }
    response = client.post("/api/v1/images/generate", json=body, headers=user)
    expect(response.status_code in (200, 201), "image generation", response)
    image_id = response.json()["id"]
    file = client.get(f"/api/v1/images/{image_id}/file", headers=user)
    expect(file.status_code == 200, "image file", file)
    expect(Image.open(io.BytesIO(file.content)).format == "WEBP", "the image is a WebP")


OSM_FILE = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="runtime-check">
  <node id="1" version="1" lat="52.5" lon="13.4"><tag k="amenity" v="cafe"/></node>
  <node id="2" version="1" lat="52.51" lon="13.41"/>
  <node id="3" version="1" lat="52.52" lon="13.40"/>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="path"/></way>
</osm>
"""


@step("osm: .osm file import job")
def osm(client: httpx.Client, admin: dict[str, str], tmp: Path) -> None:
    source = client.post("/data-sources", json={"name": "runtime", "type": "rest"}, headers=admin)
    expect(source.status_code == 201, "data source", source)
    response = client.post(
        f"/data-sources/{source.json()['id']}/import",
        files={"file": ("berlin.osm", OSM_FILE.encode(), "application/xml")},
        headers=admin,
    )
    expect(response.status_code == 202, ".osm import", response)
    wait_job(client, response.json()["id"], admin)
    objects = client.get("/objects", params={"type": "way"}, headers=admin)
    total = int(objects.headers.get("X-Total-Count", "0"))
    expect(objects.status_code == 200 and total >= 1, "imported way", objects)


def rendered_views() -> list[tuple[str, bytes]]:
    # The synthetic view set the bestiary tests render (numpy + Pillow only).
    spec = importlib.util.spec_from_file_location(
        "bestiary_views", ROOT / "tests" / "apps" / "bestiary" / "views.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return [(v.name, v.png) for v in module.views(24)]


@step("bestiary: reconstruction of rendered views -> a character's model -> an export")
def bestiary(client: httpx.Client, admin: dict[str, str], tmp: Path) -> None:
    files = [("files", (name, png, "image/png")) for name, png in rendered_views()]
    upload = client.post("/api/reconstruct/upload", files=files, headers=admin)
    expect(upload.status_code == 201, "reconstruction upload", upload)
    body = {"upload_id": upload.json()["upload_id"], "options": {"quality": "medium"}}
    process = client.post("/api/reconstruct/process", json=body, headers=admin)
    expect(process.status_code == 202, "reconstruction start", process)
    job_id = process.json()["job_id"]
    status = wait_status(client, f"/api/reconstruct/status/{job_id}", admin, ("completed",))
    expect(status["status"] == "completed", f"reconstruction ended {status}")
    result = client.get(status["result_url"], headers=admin)
    expect(result.status_code == 200 and result.content[:4] == b"glTF", "GLB result", result)
    character = client.post(
        "/api/characters", json={"name": "Runtime Troll", "race": "Troll"}, headers=admin
    )
    expect(character.status_code == 201, "character", character)
    character_id = character.json()["id"]
    attach = client.post(
        f"/api/reconstruct/result/{job_id}/attach",
        json={"character_id": character_id},
        headers=admin,
    )
    expect(attach.status_code == 200, "attach the result", attach)
    export = client.post(
        "/api/export", json={"character_id": character_id, "format": "obj"}, headers=admin
    )
    expect(export.status_code in (200, 202), "export", export)
    done = wait_status(client, f"/api/export/status/{export.json()['id']}", admin, ("completed",))
    expect(done["status"] == "completed", f"export ended {done}")
    download = client.get(done["download_url"], headers=admin)
    expect(download.status_code == 200 and download.content[:2] == b"PK", "OBJ zip", download)


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    started = time.monotonic()
    pip_check()
    print("  ok   pip check", flush=True)
    print(f"  ok   imported {import_everything()} modules under worldbase", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="worldbase-runtime-"))
    env = clean_env(tmp / "data")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "serve.log"
    server: subprocess.Popen[bytes] | None = None
    try:
        worldbase(tmp, env, "migrate")
        worldbase(tmp, env, "seed")
        worldbase(tmp, env, "users", "create", ADMIN[0], "--password", ADMIN[1], "--admin")
        worldbase(tmp, env, "users", "create", USER[0], "--password", USER[1])
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(BIN / "worldbase"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=tmp,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_healthy(base, server, log)
        print(f"  ok   worldbase serve on {base}", flush=True)
        with httpx.Client(base_url=base, timeout=120) as client:
            admin = login(client, *ADMIN)
            user = login(client, *USER)
            samsyn(client, user, tmp)
            habitats(client, admin, tmp)
            dnd(client, user, tmp)
            osm(client, admin, tmp)
            bestiary(client, admin, tmp)
    except (CheckFailed, subprocess.CalledProcessError, httpx.HTTPError, StopIteration):
        traceback.print_exc()
        if log.exists():
            print(f"--- last lines of the server log ---\n{log.read_text()[-4000:]}")
        print(f"runtime check FAILED after {time.monotonic() - started:.0f} s")
        return 1
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"runtime check passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
