"""Drive SamSyn's own frontend (Mistra-C2B2/samsyn, React + MapLibre) in headless Chromium
against a Worldbase serving SamSyn's `/api/v1`, as a user would, and check the result
through the API.

    /work/main/.venv/bin/python bench/clients/samsyn_frontend/drive.py \
        [--frontend /work/ext/samsyn-frontend] [--worldbase-src src] [--out docs/samsyn-frontend]

See README.md next to this file for the build (SamSyn's code stays out of this repository;
its frontend is built in --frontend with our vite config override, which swaps Clerk for
clerk_stub.js). Everything runs on 127.0.0.1 and nothing is fetched from the internet:

- a JWKS on loopback with an RSA key made here; session tokens are RS256 with the claims of
  tests/apps/samsyn_v1/conftest.py (sub, email, name, public_metadata.isAdmin);
- Worldbase: `worldbase migrate` and `worldbase serve` (PYTHONPATH=--worldbase-src) with a
  temporary WORLDBASE_DATA_DIR, JWKS_URL, JWT_ISSUER, CORS_ORIGINS (the frontend's origin)
  and WORLDBASE_SOURCE_ALLOWLIST (the WMS and the COG server below);
- a WMS: tests/mapserver.py (MapServer's `mapserv`, or its stand-in) behind a small front
  that adds `Access-Control-Allow-Origin: *` (MapLibre fetches WMS tiles cross-origin, as
  from any public WMS);
- a small Cloud-Optimized GeoTIFF made here with rasterio, served with Range support;
- the frontend's build folder, served with an SPA fallback.

Requests to other hosts (the OSM/Carto basemap tiles) are aborted and counted, not reported
as failures. The flows (each a step; a failing step is recorded and the run goes on):
 1. collaborator signs in once (so Worldbase knows the e-mail);
 2. owner (a Clerk admin: SamSyn adds WMS and GeoTIFF layers through its Admin panel)
    opens the app signed out, signs in (stub), creates a map;
 3. adds a WMS server and a WMS library layer, and a GeoTIFF library layer (Admin panel);
 4. adds both to the map (Layers > Add from Library);
 5. draws a rectangle (terra-draw, mouse clicks on the map canvas) and creates a layer;
 6. shares the map: edit map > edit permissions "Collaborators" > the collaborator's e-mail;
    and the Share button (link to the clipboard);
 7. comments on the map;
 8. reorders layers (drag and drop in the layer list);
 9. the collaborator opens the app and sees the shared map;
10. the final state through the API (the map's layers and order, collaborators, comments).

Prints every 4xx/5xx response (method, URL, status, body) and every failed request, writes
them with the console to OUT/run.json, screenshots to OUT/NN-*.png. Exit status 1 when a
step failed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
CLI = "from worldbase.cli import app; app()"
ISSUER = "https://clerk.worldbase.test"
KEY_ID = "browsercheck-1"
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--no-sandbox",
    # WebGL (MapLibre) on the CPU.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    # Closed network: no background calls home.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# --- Identity: Clerk-style RS256 session tokens, keys on a loopback JWKS --------------------


class Clerk:
    def __init__(self) -> None:
        from tests.builders import jwks_server  # the repository is on sys.path by now

        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        jwk.update(kid=KEY_ID, use="sig", alg="RS256")
        self.keys = contextlib.ExitStack()
        self.jwks_url = self.keys.enter_context(jwks_server({"keys": [jwk]}))


@dataclass
class User:
    clerk: Clerk
    first: str
    last: str
    is_admin: bool = False
    sub: str = field(default_factory=lambda: "user_" + uuid.uuid4().hex[:24])

    @property
    def email(self) -> str:
        return f"{self.first.lower()}.{self.sub[-6:]}@example.org"

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def token(self, origin: str, lifetime: int = 4 * 3600) -> str:
        # The claims of tests/apps/samsyn_v1/conftest.py (ClerkUser.token). Long-lived: the
        # stub hands the same token to every request of a run.
        now = int(time.time())
        claims = {
            "sub": self.sub,
            "iss": ISSUER,
            "azp": origin,
            "sid": "sess_" + uuid.uuid4().hex[:16],
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime,
            "email": self.email,
            "name": self.name,
            "public_metadata": {"isAdmin": True} if self.is_admin else {},
        }
        return jwt.encode(claims, self.clerk.private, algorithm="RS256", headers={"kid": KEY_ID})

    def headers(self, origin: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(origin, 300)}"}

    def stub_identity(self, origin: str) -> dict[str, Any]:
        """What clerk_stub.js reads from `window.__TEST_CLERK__`."""
        return {
            "token": self.token(origin),
            "user": {
                "id": self.sub,
                "email": self.email,
                "fullName": self.name,
                "firstName": self.first,
                "lastName": self.last,
                "publicMetadata": {"isAdmin": True} if self.is_admin else {},
            },
        }


# --- Test data: a WMS (tests/mapserver.py) behind a CORS front, a COG with Range support -----


def cors_front(upstream: str) -> tuple[ThreadingHTTPServer, str]:
    client = httpx.Client(timeout=60)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = client.get(upstream + self.path)
            # The browser hangs up on tiles MapLibre cancelled.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(answer.status_code)
                if "content-type" in answer.headers:
                    self.send_header("Content-Type", answer.headers["content-type"])
                self.send_header("Content-Length", str(len(answer.content)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(answer.content)

        def log_message(self, *args: Any) -> None:
            pass

    return serve(Handler)


def make_cog(path: Path) -> Path:
    """A 512x512 one-band uint8 COG over lon 14..22, lat 56..62 (EPSG:4326): concentric
    rings, so any colormap shows structure."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_bounds

    y, x = np.mgrid[0:512, 0:512]
    r = np.hypot(x - 256, y - 256)
    data = ((np.sin(r / 12.0) + 1) * 120 + 10).astype("uint8")
    data[r > 250] = 0
    plain = path.with_suffix(".plain.tif")
    profile = {
        "driver": "GTiff",
        "width": 512,
        "height": 512,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:4326",
        "transform": from_bounds(14.0, 56.0, 22.0, 62.0, 512, 512),
        "nodata": 0,
    }
    with rasterio.open(plain, "w", **profile) as dst:
        dst.write(data, 1)
    with rasterio.open(plain) as src:
        cog = src.profile | {"driver": "COG", "compress": "deflate", "blocksize": 256}
        with rasterio.open(path, "w", **cog) as dst:
            dst.write(src.read())
    plain.unlink()
    return path


def file_server(folder: Path, *, spa: bool) -> tuple[ThreadingHTTPServer, str]:
    """Static files with Range support (GDAL reads COGs by ranges) and, for the frontend,
    index.html for unknown paths."""

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

        def end_headers(self) -> None:
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Accept-Ranges", "bytes")
            super().end_headers()

        def do_GET(self) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._get()

        def _get(self) -> None:
            path = Path(self.translate_path(self.path))
            if spa and not path.exists():
                self.path = "/index.html"
                path = folder / "index.html"
            ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if ranged and path.is_file():
                data = path.read_bytes()
                start = int(ranged[1])
                end = min(int(ranged[2]) if ranged[2] else len(data) - 1, len(data) - 1)
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                chunk = data[start : end + 1]
                self.send_response(206)
                self.send_header("Content-Type", self.guess_type(str(path)))
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                self.wfile.write(chunk)
                return
            super().do_GET()

    return serve(Handler)


# --- Worldbase ---------------------------------------------------------------------------


@dataclass
class Served:
    url: str
    cli: Callable[..., subprocess.CompletedProcess[str]] | None = None


@contextlib.contextmanager
def worldbase(src: Path, tmp: Path, env_extra: dict[str, str]) -> Iterator[Served]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORLDBASE_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env.update(
        PYTHONPATH=str(src),
        WORLDBASE_DATA_DIR=str(tmp / "data"),
        WORLDBASE_PERIODIC_JOBS="false",
        WORLDBASE_INLINE_WORKER="true",
        LOG_JSON="false",
    )
    env.update(env_extra)
    log = tmp / "worldbase.log"
    python = sys.executable
    with log.open("wb") as out:
        subprocess.run(
            [python, "-c", CLI, "migrate"],
            env=env,
            cwd=tmp,
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    port = free_port()
    out = log.open("ab")
    proc = subprocess.Popen(
        [python, "-c", CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_for_port(port, timeout=90)
        except TimeoutError:
            sys.exit("worldbase did not start:\n" + log.read_text(errors="replace")[-3000:])

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [python, "-c", CLI, *args],
                env=env,
                cwd=tmp,
                capture_output=True,
                text=True,
                check=False,
            )

        yield Served(f"http://127.0.0.1:{port}", cli)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()


# --- The browser ---------------------------------------------------------------------------


# What SamSyn's GeoTIFF form shows as its preview (`GeoTiffLayerForm.tsx`: an <img> that its
# onError hides, with "Preview not available" written beside it).
PREVIEW_STATE = """() => {
  const img = document.querySelector('img[alt="GeoTIFF preview"]');
  if (!img) return "absent";
  const hidden = getComputedStyle(img).display === "none";
  return `${hidden ? "hidden" : "shown"}, ${img.naturalWidth}x${img.naturalHeight}, ` +
    `${new URL(img.src).search.includes("rescale") ? "with" : "without"} rescale`;
}"""


@dataclass
class Record:
    out: Path
    steps: list[dict[str, Any]] = field(default_factory=list)
    http_errors: list[dict[str, Any]] = field(default_factory=list)
    request_failures: list[dict[str, Any]] = field(default_factory=list)
    console: list[dict[str, Any]] = field(default_factory=list)
    blocked_external: dict[str, int] = field(default_factory=dict)
    api_calls: list[dict[str, Any]] = field(default_factory=list)
    shots: list[str] = field(default_factory=list)
    cancelled: int = 0
    current: str = ""

    def watch(self, page: Any, who: str, api_base: str) -> None:
        def on_response(response: Any) -> None:
            request = response.request
            if response.url.startswith(api_base):
                self.api_calls.append(
                    {
                        "who": who,
                        "step": self.current,
                        "method": request.method,
                        "url": response.url[len(api_base) :],
                        "status": response.status,
                    }
                )
            if response.status < 400:
                return
            try:
                body = response.text()[:600]
            except Exception as error:
                body = f"<unreadable: {error}>"
            entry = {
                "who": who,
                "step": self.current,
                "method": request.method,
                "url": response.url,
                "status": response.status,
                "body": body,
                "request_body": (request.post_data or "")[:1500],
            }
            self.http_errors.append(entry)
            print(f"  HTTP {response.status} {request.method} {response.url}\n      {body[:300]}")

        def on_failed(request: Any) -> None:
            host = urlsplit(request.url).hostname
            if host not in ("127.0.0.1", "localhost"):
                return
            if request.failure == "net::ERR_ABORTED":
                # MapLibre cancels the tiles it no longer needs (zoom, pan, layer order).
                self.cancelled += 1
                return
            entry = {
                "who": who,
                "step": self.current,
                "method": request.method,
                "url": request.url,
                "error": request.failure,
            }
            if "ERR_BLOCKED_BY_ORB" in (request.failure or ""):
                # Chromium hides what an <img> got when it was no image (JSON, say): ask again.
                with contextlib.suppress(httpx.HTTPError):
                    again = httpx.get(request.url, timeout=30)
                    kind = again.headers.get("content-type", "")
                    body = "" if "image" in kind else again.text[:300]
                    entry["refetched"] = f"{again.status_code} {kind} {body}"
            self.request_failures.append(entry)
            print(f"  FAILED {request.method} {request.url}: {request.failure}")

        def on_console(message: Any) -> None:
            text = message.text
            if (
                "openstreetmap.org" in text
                or "cartocdn.com" in text
                or text == "Failed to load resource: net::ERR_FAILED"
            ):
                return  # the basemap tiles the driver aborts (closed network)
            if message.type in ("error", "warning") or "API Error" in text:
                self.console.append(
                    {
                        "who": who,
                        "step": self.current,
                        "type": message.type,
                        "text": message.text[:800],
                    }
                )

        def on_pageerror(error: Any) -> None:
            self.console.append(
                {"who": who, "step": self.current, "type": "pageerror", "text": str(error)[:800]}
            )
            print(f"  PAGE ERROR {error}")

        page.on("response", on_response)
        page.on("requestfailed", on_failed)
        page.on("console", on_console)
        page.on("pageerror", on_pageerror)

    def shot(self, page: Any, name: str) -> None:
        path = self.out / f"{len(self.shots) + 1:02d}-{name}.png"
        with contextlib.suppress(Exception):
            page.wait_for_timeout(600)
            page.screenshot(path=str(path))
            self.shots.append(path.name)

    @contextlib.contextmanager
    def step(self, name: str, page: Any | None = None) -> Iterator[dict[str, Any]]:
        self.current = name
        entry: dict[str, Any] = {"step": name, "ok": False, "notes": []}
        self.steps.append(entry)
        print(f"[step] {name}")
        started = time.monotonic()
        try:
            yield entry
            entry["ok"] = True
        except Exception as error:
            entry["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:400]}"
            entry["trace"] = traceback.format_exc()[-1500:]
            print(f"  step failed: {entry['error']}")
            print("    " + "\n    ".join(str(error).splitlines()[1:12]))
            if page is not None:
                self.shot(page, "FAILED-" + re.sub(r"[^a-z0-9]+", "-", name.lower())[:40])
                # Close what the step left open (a dialog, a select), for the next steps.
                with contextlib.suppress(Exception):
                    for _ in range(2):
                        page.keyboard.press("Escape")
                        page.wait_for_timeout(300)
        entry["seconds"] = round(time.monotonic() - started, 1)


def external_blocker(record: Record) -> Callable[[Any], None]:
    def handle(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
            return
        record.blocked_external[host] = record.blocked_external.get(host, 0) + 1
        route.abort()

    return handle


def open_app(browser: Any, record: Record, user: User, app: str, api: str, who: str) -> Any:
    context = browser.new_context(viewport=VIEWPORT)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app)
    context.route("**/*", external_blocker(record))
    identity = json.dumps(user.stub_identity(app))
    context.add_init_script(
        f"window.__TEST_CLERK__ = {identity}; window.__SAMSYN_API_URL__ = {json.dumps(api)};"
    )
    page = context.new_page()
    page.set_default_timeout(20_000)

    # SamSyn's welcome dialog opens half a second after each load (until "Do not show this
    # message again"); close it whenever it stands in the way, as a user would.
    def close_welcome(button: Any) -> None:
        with contextlib.suppress(Exception):
            page.get_by_label("Do not show this message again").check(timeout=2000)
        try:
            button.click(timeout=3000)
        except Exception:
            page.keyboard.press("Escape")

    page.add_locator_handler(page.get_by_role("button", name="Get Started"), close_welcome)
    record.watch(page, who, api)
    return page


def dismiss_welcome(page: Any) -> None:
    with contextlib.suppress(Exception):
        page.get_by_role("button", name="Get Started").click(timeout=4000)


def sign_in(page: Any, app: str) -> None:
    page.goto(app)
    dismiss_welcome(page)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_load_state()
    page.get_by_test_id("clerk-stub-user-button").wait_for()
    dismiss_welcome(page)


def header_button(page: Any, name: str) -> Any:
    return page.locator("header").get_by_role("button", name=name, exact=True)


def show_panel(page: Any, name: str) -> None:
    """Open the side panel `name` (Maps, Layers, Comments) from the header, closing the
    Admin panel (an overlay the header buttons leave open)."""
    if page.get_by_role("heading", name="Admin Panel").count():
        header_button(page, "Admin").click()
    heading = page.get_by_role("heading", name=name, exact=True)
    if not heading.count():
        header_button(page, name).click()
    heading.first.wait_for()


def choose_option(page: Any, trigger: Any, option: Any) -> None:
    """Pick `option` in the (Radix) select opened by `trigger`; make sure it closed."""
    trigger.click()
    page.get_by_role(option[0], name=option[1]).first.click()
    try:
        page.get_by_role("listbox").wait_for(state="hidden", timeout=3000)
    except Exception:
        page.keyboard.press("Escape")
        page.get_by_role("listbox").wait_for(state="hidden", timeout=3000)


def choose_category(page: Any, name: str) -> None:
    page.locator("#category").click()
    existing = page.get_by_role("option", name=name, exact=True)
    if existing.count():
        existing.click()
        return
    page.keyboard.press("Escape")
    choose_option(page, page.locator("#category"), ("option", "Add new category"))
    page.locator("#newCategory").fill(name)
    page.get_by_role("button", name="Add", exact=True).click()


def expect_response(page: Any, method: str, pattern: str, action: Callable[[], None]) -> Any:
    """Run `action`, wait for the API response `method` on a URL matching `pattern`."""
    regex = re.compile(pattern)
    with page.expect_response(
        lambda r: r.request.method == method and bool(regex.search(r.url)), timeout=30_000
    ) as info:
        action()
    response = info.value
    if response.status >= 400:
        raise AssertionError(
            f"{method} {response.url} -> {response.status}: {response.text()[:300]}"
        )
    return response


def overview(page: Any) -> None:
    """Zoom out from the map's start (Stockholm, zoom 7) with the mouse wheel, first around
    the middle, then around the top right, so the WMS (lon 0..20, lat 40..60) and the COG
    (lon 14..22, lat 56..62) are in view left of the side panel."""
    box = page.locator(".maplibregl-canvas").bounding_box()
    assert box, "no map canvas"
    free = box["width"] - 384
    for fx, fy in ((0.35 * box["width"] / free, 0.6), (0.95, 0.08)):
        page.mouse.move(box["x"] + free * fx, box["y"] + box["height"] * fy)
        for _ in range(4):
            page.mouse.wheel(0, 220)
            page.wait_for_timeout(250)


def wait_map_idle(page: Any, seconds: float = 4.0) -> None:
    # Tiles (WMS, TiTiler) load after the layer is added; give them a moment.
    page.wait_for_timeout(int(seconds * 1000))


# --- The run ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO))
    from tests.mapserver import start_wms

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    record = Record(out=out)
    build = Path(args.frontend) / args.build_dir
    if not (build / "index.html").exists():
        sys.exit(f"no build in {build}: see README.md (npx vite build --config ...)")

    tmp = Path(tempfile.mkdtemp(prefix="samsyn-browser-"))
    clerk = Clerk()
    owner = User(clerk, "Olive", "Owner", is_admin=True)
    friend = User(clerk, "Carl", "Collaborator")
    wms_tmp = tmp / "wms"
    wms_tmp.mkdir()
    wms_gen = start_wms(wms_tmp)
    wms = next(wms_gen)
    wms_front, wms_base = cors_front(wms.base)
    wms_url = f"{wms_base}/wms"
    cog_dir = tmp / "cog"
    cog_dir.mkdir()
    make_cog(cog_dir / "rings.tif")
    cog_server, cog_base = file_server(cog_dir, spa=False)
    cog_url = f"{cog_base}/rings.tif"
    app_server, app = file_server(build, spa=True)
    env = {
        "JWKS_URL": clerk.jwks_url,
        "JWT_ISSUER": ISSUER,
        "CORS_ORIGINS": app,
        "WORLDBASE_SOURCE_ALLOWLIST": f"{wms_base}/,{cog_base}/",
    }
    src = Path(args.worldbase_src).resolve()
    print(
        f"frontend {app} (build {build}); WMS {wms_url} (mapserver={wms.mapserver}); "
        f"COG {cog_url}; worldbase from {src}"
    )
    map_id: str | None = None
    names = {"wms": "Quadrants (WMS)", "cog": "Rings (GeoTIFF)", "vector": "Survey area"}
    comment_text = (
        f"Browser check comment {uuid.uuid4().hex[:6]}: the survey area overlaps the rings."
    )

    server: contextlib.AbstractContextManager[Served] = (
        contextlib.nullcontext(Served(args.api.rstrip("/")))
        if args.api
        else worldbase(src, tmp, env)
    )
    with server as served, sync_playwright() as pw:
        api = served.url
        print(f"worldbase {api}")
        browser = pw.chromium.launch(
            executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS
        )

        # 1. The collaborator signs in once: Worldbase provisions the account.
        friend_page = open_app(browser, record, friend, app, api, "collaborator")
        with record.step("collaborator signs in once", friend_page):
            sign_in(friend_page, app)
            friend_page.wait_for_timeout(2500)
            record.shot(friend_page, "collaborator-first-sign-in")
        friend_page.context.close()

        page = open_app(browser, record, owner, app, api, "owner")
        with record.step("owner opens the app signed out", page):
            page.goto(app)
            page.wait_for_timeout(2500)
            record.shot(page, "signed-out")
            dismiss_welcome(page)

        with record.step("owner signs in (test stub)", page):
            page.get_by_role("button", name="Sign In").click()
            page.wait_for_load_state()
            page.get_by_test_id("clerk-stub-user-button").wait_for()
            dismiss_welcome(page)
            page.wait_for_timeout(2500)
            record.shot(page, "signed-in")

        with record.step("Worldbase takes the admin flag from public_metadata.isAdmin") as entry:
            ensure_admin(served, app, owner, entry)

        with record.step("create a map", page) as entry:
            header_button(page, "Maps").click()
            page.get_by_role("button", name="Create New Map").click()
            page.locator("#map-name").fill("Browser check: Baltic plan")
            page.locator("#map-description").fill(
                "Made by bench/clients/samsyn_frontend/drive.py in SamSyn's own frontend."
            )
            response = expect_response(
                page,
                "POST",
                r"/api/v1/maps$",
                lambda: page.get_by_role("button", name="Create Map").click(),
            )
            map_id = response.json()["id"]
            entry["notes"].append(f"map {map_id}")
            page.get_by_text("Next Step: Add Layers").wait_for()
            record.shot(page, "map-created")
            page.get_by_role("button", name="Add Layers Now").click()
            page.locator(".maplibregl-canvas").wait_for()
            wait_map_idle(page, 2)
            record.shot(page, "empty-map")

        with record.step("admin: add the WMS server", page):
            header_button(page, "Admin").click()
            page.get_by_role("button", name="WMS Servers").click()
            page.get_by_role("button", name="Add WMS Server").first.click()
            page.locator("#wms-url").fill(wms_url)
            page.locator("#server-name").fill("Loopback MapServer")
            expect_response(
                page,
                "POST",
                r"/api/v1/wms-servers$",
                lambda: page.get_by_role("button", name="Add Server").click(),
            )
            page.get_by_text("Loopback MapServer").first.wait_for()
            record.shot(page, "admin-wms-server")

        with record.step("admin: WMS layer into the library", page):
            page.get_by_role("button", name="Library Layers").click()
            page.get_by_role("button", name="WMS", exact=True).click()
            page.get_by_role("button", name=re.compile("Loopback MapServer")).click()
            page.get_by_role("button", name=re.compile("Quadrants")).first.click()
            page.locator("#name").fill(names["wms"])
            page.locator("#description").fill("MapServer on loopback: four coloured quadrants.")
            page.locator("#author").fill("Worldbase tests")
            choose_category(page, "Browser check")
            record.shot(page, "admin-wms-layer-form")
            expect_response(
                page,
                "POST",
                r"/api/v1/layers$",
                lambda: page.get_by_role("button", name="Add to Library").click(),
            )

        with record.step("admin: GeoTIFF layer into the library", page) as entry:
            page.get_by_role("button", name="GeoTIFF", exact=True).click()
            page.locator("#geotiffUrl").fill(cog_url)
            expect_response(
                page,
                "GET",
                r"/api/v1/titiler/info",
                lambda: page.get_by_role("button", name="Fetch Info").click(),
            )
            page.wait_for_timeout(2500)  # statistics, preview
            record.shot(page, "admin-geotiff-info")
            # The form's preview <img>: shown (decoded, not hidden by its onError) or not.
            preview = page.evaluate(PREVIEW_STATE)
            entry["notes"].append(f"preview <img>: {preview}")
            page.locator("#name").fill(names["cog"])
            page.locator("#description").fill("A COG on loopback: concentric rings.")
            page.locator("#author").fill("Worldbase tests")
            choose_category(page, "Browser check")
            record.shot(page, "admin-geotiff-form")
            expect_response(
                page,
                "POST",
                r"/api/v1/layers$",
                lambda: page.get_by_role("button", name="Add to Library").click(),
            )
            page.wait_for_timeout(800)
            record.shot(page, "admin-library")

        def add_from_library(name: str) -> None:
            show_panel(page, "Layers")
            page.get_by_role("button", name="Add from Library").first.click()
            card = page.locator("div.rounded-lg").filter(
                has=page.get_by_role("heading", name=name, exact=True)
            )
            expect_response(
                page,
                "POST",
                r"/api/v1/maps/[^/]+/layers$",
                lambda: card.get_by_role("button", name="Add").first.click(),
            )

        with record.step("add the WMS layer to the map", page) as entry:
            add_from_library(names["wms"])
            overview(page)
            wait_map_idle(page, 5)
            getmaps = [r for r in wms.requests if "REQUEST=GetMap" in r]
            times = sorted({q.split("TIME=")[1].split("&")[0] for q in getmaps if "TIME=" in q})
            entry["notes"].append(f"GetMap requests at the WMS: {len(getmaps)}, TIME {times}")
            assert getmaps, "the browser asked the WMS for no map image"
            record.shot(page, "map-with-wms")

        with record.step("add the GeoTIFF layer to the map", page) as entry:
            add_from_library(names["cog"])
            wait_map_idle(page, 6)
            tiles = collections.Counter(
                c["status"]
                for c in record.api_calls
                if c["step"] == record.current and c["url"].startswith("/api/v1/titiler/tiles/")
            )
            entry["notes"].append(f"TiTiler tiles by status: {dict(tiles)}")
            assert tiles.get(200), "no GeoTIFF tile came back"
            record.shot(page, "map-with-wms-and-geotiff")

        def draw_layer(name: str, box_fractions: tuple[float, float, float, float]) -> None:
            show_panel(page, "Layers")
            page.get_by_role("button", name="Create Layer").first.click()
            page.locator("#layer-name").fill(name)
            page.locator("#layer-description").fill("Drawn in the browser with terra-draw.")
            choose_category(page, "Browser check")
            page.get_by_role("button", name="Rectangle", exact=True).click()
            box = page.locator(".maplibregl-canvas").bounding_box()
            assert box, "no map canvas"
            # Left of the Create Layer panel (right side, w-96 = 384 px).
            free = box["width"] - 384
            fx0, fy0, fx1, fy1 = box_fractions
            x0, y0 = box["x"] + free * fx0, box["y"] + box["height"] * fy0
            x1, y1 = box["x"] + free * fx1, box["y"] + box["height"] * fy1
            page.mouse.move(x0, y0)
            page.mouse.click(x0, y0)
            page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
            page.mouse.move(x1, y1, steps=5)
            page.mouse.click(x1, y1)
            page.get_by_text("Features (1)").wait_for(timeout=8000)
            # The click also asked the WMS for feature info (SamSyn's map click): close it.
            with contextlib.suppress(Exception):
                page.locator(".maplibregl-popup-close-button").first.click(timeout=2000)
            record.shot(page, "drawn-rectangle")
            expect_response(
                page,
                "POST",
                r"/api/v1/maps/[^/]+/layers$",
                lambda: page.get_by_role("button", name="Create Layer").last.click(),
            )
            wait_map_idle(page, 3)
            show_panel(page, "Layers")

        with record.step("draw a vector layer (terra-draw rectangle)", page):
            draw_layer(names["vector"], (0.3, 0.35, 0.6, 0.65))
            record.shot(page, "map-with-three-layers")

        with record.step("share the map with the collaborator", page):
            show_panel(page, "Maps")
            card = page.locator("div.rounded-lg").filter(
                has=page.get_by_role("heading", name="Browser check: Baltic plan")
            )
            card.locator("button:has(svg.lucide-pencil)").first.click()
            dialog = page.get_by_role("dialog")
            choose_option(
                page,
                dialog.get_by_role("combobox").first,
                ("option", re.compile("^Collaborators")),
            )
            page.locator("#collaborator-email").fill(friend.email)
            page.locator("#collaborator-email").press("Enter")
            dialog.get_by_text(friend.email).wait_for()
            record.shot(page, "share-dialog")
            expect_response(
                page,
                "POST",
                r"/api/v1/maps/[^/]+/collaborators$",
                lambda: dialog.get_by_role("button", name="Save Changes").click(),
            )
            page.wait_for_timeout(1500)
            record.shot(page, "shared")

        with record.step("share link (Share button, clipboard)", page) as entry:
            with contextlib.suppress(Exception):
                page.keyboard.press("Escape")
            page.locator(
                "header button:has(svg.lucide-share2), header button:has(svg.lucide-share-2)"
            ).first.click()
            page.get_by_text("Map link copied to clipboard!").wait_for(timeout=5000)
            link = page.evaluate("navigator.clipboard.readText()")
            entry["notes"].append(f"link {link}")
            assert map_id and map_id in link, link

        with record.step("comment on the map", page):
            show_panel(page, "Comments")
            page.get_by_placeholder("Add a comment...").fill(comment_text)
            expect_response(
                page,
                "POST",
                r"/api/v1/comments$",
                lambda: page.get_by_role("button", name="Post Comment").click(),
            )
            page.get_by_text(comment_text).wait_for()
            record.shot(page, "commented")

        ui_order: list[str] = []
        with record.step("reorder layers (drag and drop)", page) as entry:
            show_panel(page, "Layers")
            items = page.locator('[aria-label$=", draggable"]')
            items.first.wait_for()
            if items.count() < 2:
                # The raster layers did not make it: reorder two drawn layers instead.
                entry["notes"].append("fewer than 2 layers: a second drawn layer first")
                names["vector2"] = "Second area"
                draw_layer(names["vector2"], (0.15, 0.15, 0.35, 0.3))
                show_panel(page, "Layers")
            before = [
                a.removeprefix("Layer ").removesuffix(", draggable")
                for a in items.evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
            ]
            entry["notes"].append(f"before {before}")
            ui_order = before
            assert len(before) >= 2, f"{len(before)} layer(s) on the map: nothing to reorder"
            record.shot(page, "layers-before-reorder")
            expect_response(
                page,
                "PUT",
                r"/api/v1/maps/[^/]+/layers/reorder$",
                lambda: items.nth(len(before) - 1).drag_to(items.nth(0)),
            )
            page.wait_for_timeout(1500)
            ui_order = [
                a.removeprefix("Layer ").removesuffix(", draggable")
                for a in items.evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
            ]
            entry["notes"].append(f"after {ui_order}")
            assert ui_order != before, "order unchanged"
            record.shot(page, "layers-after-reorder")

        with record.step("reload: the map comes back from the API", page) as entry:
            page.reload()
            dismiss_welcome(page)
            page.locator(".maplibregl-canvas").wait_for()
            show_panel(page, "Layers")
            overview(page)
            wait_map_idle(page, 6)
            items = page.locator('[aria-label$=", draggable"]')
            items.first.wait_for()
            reloaded = [
                a.removeprefix("Layer ").removesuffix(", draggable")
                for a in items.evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
            ]
            entry["notes"].append(f"after reload {reloaded}")
            record.shot(page, "owner-after-reload")
            assert reloaded == ui_order, f"{reloaded} != {ui_order}"
        page.context.close()

        friend_page = open_app(browser, record, friend, app, api, "collaborator")
        with record.step("collaborator sees the shared map", friend_page):
            sign_in(friend_page, app)
            friend_page.wait_for_timeout(2000)
            show_panel(friend_page, "Maps")
            friend_page.get_by_role("heading", name="Browser check: Baltic plan").wait_for()
            friend_page.get_by_role("heading", name="Browser check: Baltic plan").click()
            overview(friend_page)
            wait_map_idle(friend_page, 6)
            record.shot(friend_page, "collaborator-view")
        friend_page.context.close()
        browser.close()

        with record.step("final state through the API") as entry:
            check_api(api, app, owner, friend, map_id, names, comment_text, ui_order, entry)

    wms_front.shutdown()
    cog_server.shutdown()
    app_server.shutdown()
    clerk.keys.close()
    with contextlib.suppress(StopIteration):
        next(wms_gen)
    (out / "run.json").write_text(
        json.dumps(
            {
                "steps": [{k: v for k, v in s.items() if k != "trace"} for s in record.steps],
                "http_errors": record.http_errors,
                "request_failures": record.request_failures,
                "console": record.console[:200],
                "blocked_external_requests": record.blocked_external,
                "cancelled_requests": record.cancelled,
                "api_calls": record.api_calls,
                "screenshots": record.shots,
            },
            indent=1,
        )
    )
    print_summary(record)
    return 0 if all(s["ok"] for s in record.steps) else 1


def ensure_admin(served: Served, app: str, owner: User, entry: dict[str, Any]) -> None:
    """SamSyn's admins are Clerk users whose public metadata says `isAdmin`; the owner's
    token says so. When Worldbase does not make the owner an admin from it, the step fails
    (a finding) and the owner is made one with Worldbase's own `worldbase users create
    EMAIL --admin`, so that the Admin panel's flows can still be checked."""
    with httpx.Client(base_url=served.url, timeout=30) as client:
        me = client.get("/api/users/me", headers=owner.headers(app))
        entry["notes"].append(f"GET /api/users/me: {me.status_code} {me.text[:300]}")
        if me.status_code == 200 and me.json().get("is_admin") is True:
            return
        if served.cli is None:
            raise AssertionError("the owner is no admin (and --api has no CLI to make one)")
        done = served.cli("users", "create", owner.email, "--admin", "--password", uuid.uuid4().hex)
        entry["notes"].append(
            f"fallback `worldbase users create {owner.email} --admin`: exit {done.returncode} "
            f"{(done.stdout + done.stderr).strip()[-300:]}"
        )
        again = client.get("/api/users/me", headers=owner.headers(app))
        entry["notes"].append(f"then GET /api/users/me: {again.status_code} {again.text[:300]}")
        raise AssertionError(
            "the token's public_metadata.isAdmin did not make the owner an admin"
            + (" (made one with the CLI)" if '"is_admin":true' in again.text else "")
        )


def check_api(
    api: str,
    app: str,
    owner: User,
    friend: User,
    map_id: str | None,
    names: dict[str, str],
    comment_text: str,
    ui_order: list[str],
    entry: dict[str, Any],
) -> None:
    assert map_id, "no map was created"
    with httpx.Client(base_url=api, timeout=30) as client:
        problems = []
        got = client.get(f"/api/v1/maps/{map_id}", headers=owner.headers(app))
        assert got.status_code == 200, (
            f"GET /api/v1/maps/{map_id}: {got.status_code} {got.text[:300]}"
        )
        the_map = got.json()
        layers = sorted(the_map.get("map_layers", []), key=lambda ml: ml.get("order", 0))
        api_names = [(ml.get("layer") or {}).get("name") for ml in layers]
        entry["notes"].append(f"map layers by order: {api_names}")
        if sorted(n for n in api_names if n) != sorted(names.values()):
            problems.append(f"layers {api_names} != {sorted(names.values())}")
        if ui_order and api_names != ui_order:
            problems.append(f"API order {api_names} != UI order {ui_order}")
        kinds = {
            (ml.get("layer") or {}).get("name"): (ml.get("layer") or {}).get("source_type")
            for ml in layers
        }
        entry["notes"].append(f"source types {kinds}")
        # SamSyn reads back what its GeoTIFF form sent: bounds [west, south, east, north]
        # (its "zoom to layer" button and MapLibre's source bounds need the flat form).
        for ml in layers:
            layer = ml.get("layer") or {}
            if layer.get("source_type") == "geotiff":
                bounds = (layer.get("source_config") or {}).get("bounds")
                entry["notes"].append(f"GeoTIFF source_config.bounds as read back: {bounds}")
                if bounds != [14, 56, 22, 62]:
                    problems.append(
                        f"GeoTIFF bounds read back as {bounds}, SamSyn sent [14, 56, 22, 62]"
                    )
        collaborators = client.get(
            f"/api/v1/maps/{map_id}/collaborators", headers=owner.headers(app)
        )
        emails = (
            [(c.get("user") or {}).get("email") for c in collaborators.json()]
            if collaborators.status_code == 200
            else []
        )
        entry["notes"].append(f"collaborators {emails} ({collaborators.status_code})")
        if friend.email not in emails:
            problems.append(
                f"collaborator {friend.email} missing: "
                f"{collaborators.status_code} {collaborators.text[:200]}"
            )
        comments = client.get(
            "/api/v1/comments", params={"map_id": map_id}, headers=owner.headers(app)
        )
        texts = [c.get("content") for c in comments.json()] if comments.status_code == 200 else []
        if comment_text not in texts:
            problems.append(f"comment missing: {comments.status_code} {comments.text[:200]}")
        theirs = client.get("/api/v1/maps", headers=friend.headers(app))
        their_ids = [m.get("id") for m in theirs.json()] if theirs.status_code == 200 else []
        if map_id not in their_ids:
            problems.append(
                f"collaborator's map list lacks the map: {theirs.status_code} {theirs.text[:200]}"
            )
        assert not problems, "; ".join(problems)


def print_summary(record: Record) -> None:
    print("\n=== steps")
    for s in record.steps:
        print(
            f"  {'ok  ' if s['ok'] else 'FAIL'} {s['step']} ({s['seconds']} s)"
            + (f": {s['error']}" if not s["ok"] else "")
            + ("".join(f"\n        {n}" for n in s["notes"]))
        )
    print(f"\n=== {len(record.http_errors)} HTTP errors (4xx/5xx), by endpoint")
    grouped: dict[str, list[dict[str, Any]]] = {}
    for e in record.http_errors:
        path = urlsplit(e["url"]).path
        path = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", path)
        path = re.sub(r"/\d+/\d+/\d+", "/{z}/{x}/{y}", path)
        grouped.setdefault(f"{e['method']} {path}", []).append(e)
    for key, entries in grouped.items():
        statuses = sorted({e["status"] for e in entries})
        print(f"  {key}: {len(entries)}x {statuses}  e.g. {entries[0]['body'][:200]}")
    print(f"\n=== {len(record.request_failures)} failed requests (loopback)")
    for e in record.request_failures[:20]:
        print(f"  {e['method']} {e['url']}: {e['error']}")
        if "refetched" in e:
            print(f"      the same URL again, outside the browser: {e['refetched']}")
    print(f"=== {record.cancelled} requests cancelled by the page (net::ERR_ABORTED, not listed)")
    print(f"\n=== blocked external requests: {record.blocked_external}")
    print(f"=== screenshots: {record.shots}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frontend", default="/work/ext/samsyn-frontend")
    parser.add_argument("--build-dir", default="build-browsercheck")
    parser.add_argument("--worldbase-src", default=str(REPO / "src"))
    parser.add_argument("--out", default=str(REPO / "docs" / "samsyn-frontend"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument(
        "--api",
        help="an API already running (that trusts these tokens unverified, or this JWKS) "
        "instead of starting Worldbase; for working on the driver itself",
    )
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
