"""Drive the AI-DnD game's two pages (ctavolazzi/AI-DnD) in headless Chromium against a
running Worldbase, as a player does, and check in the DOM that their images loaded.

    python bench/clients/aidnd_pages.py EXPORT_DIR SERVER_URL [--out DIR] [--port 3000]

EXPORT_DIR holds `retro-adventure-game.html` and `api_game_portal.html` exported from an
AI-DnD checkout (see README, "The AI-DnD game's pages": the retro game must be a revision
that parses, e.g. 1c76f16). Nothing is fetched from the internet. The pages are copied to a
temporary folder; in the copy of the retro game the hard-coded `http://localhost:8000` is
replaced by SERVER_URL (the only change). The portal's base URL is typed into its own
"Base URL" field. The copies are served by `python -m http.server` on 127.0.0.1:PORT (3000 or
5173 are allowed by Worldbase's development CORS), Chromium opens them with the flags of
tests/browser.py at 1200x800, and the screenshots go to --out.

Checks (exit status 1 when one of the "must" checks fails):
- retro game: NEW ADVENTURE, the scene viewer shows the generated "Emberpeak Entrance" scene
  (`#scene-image` naturalWidth > 0) -> aidnd-retro-game.png;
  the page's `generateCharacterPortrait(gameState.character)` (no button of this revision
  calls it; it paints into the scene viewer) loads a second image -> aidnd-retro-portrait.png;
  the item modal's "Generate New Image" (Dagger) is reported, not required: the page itself
  prefixes the complete data URI a second time (`data:image/png;base64,data:image/webp;...`).
- portal: base URL set, "Check Health" and "Refresh Images": every thumbnail
  (`${base}/${storage_path_thumbnail}`) has naturalWidth > 0 -> aidnd-portal.png.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

RETRO = "retro-adventure-game.html"
PORTAL = "api_game_portal.html"
UPSTREAM_BASE = "http://localhost:8000"
WIDTH, HEIGHT = 1200, 800

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    f"--window-size={WIDTH},{HEIGHT}",
]


class Page:
    """A DevTools-protocol session that keeps the events it sees (console, failed loads)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        result = self.call(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"timed out waiting for {expression!r}")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and failed network loads seen so far."""
        out = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                text = details.get("exception", {}).get("description") or details.get("text")
                out.append(f"exception: {str(text)[:200]}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                args = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params["args"]
                )
                out.append(f"console.error: {args[:200]}")
            elif method == "Network.loadingFailed":
                out.append(f"load failed: {params.get('errorText')} ({params.get('type')})")
            elif method == "Network.responseReceived":
                response = params.get("response", {})
                if response.get("status", 200) >= 400:
                    out.append(f"HTTP {response['status']}: {response.get('url')}")
        self.events.clear()
        return out


def start_chromium(profile_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        sys.exit("chromium is not installed")
    process = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = profile_dir / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if time.monotonic() > deadline:
            process.kill()
            sys.exit("chromium did not start")
        time.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
    return process, next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


IMG_STATE = """(() => {{ const i = {selector};
  return i ? {{complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
              src: (i.getAttribute('src') || '').slice(0, 60),
              srcLength: (i.src || '').length}} : null; }})()"""


def img_state(page: Page, selector: str) -> dict[str, Any] | None:
    return page.evaluate(IMG_STATE.format(selector=selector))


def check_retro(page: Page, site: str, out: Path, results: dict[str, Any]) -> None:
    page.goto(f"{site}/{RETRO}")
    # The page checks /health on load (its `status === 'ok'`), then paints the first scene.
    page.wait_for("typeof nanoBanana === 'object' && nanoBanana.backendAvailable === true", 30)
    page.evaluate("document.getElementById('new-game-btn').click()")
    scene_loaded = (
        "(() => { const i = document.getElementById('scene-image');"
        " return i.classList.contains('loaded') && i.complete && i.naturalWidth > 0; })()"
    )
    page.wait_for(scene_loaded, 90)
    time.sleep(0.5)
    scene = img_state(page, "document.getElementById('scene-image')")
    results["retro.scene"] = {
        "must": True,
        "ok": bool(scene and scene["width"] > 0),
        **(scene or {}),
    }
    results["retro.scene"]["problems"] = page.problems()
    page.screenshot(out / "aidnd-retro-game.png")

    # The character portrait: the page's own method; it shows the portrait in the scene viewer.
    first_src_length = scene["srcLength"] if scene else 0
    portrait_ok = page.evaluate(
        "nanoBanana.generateCharacterPortrait(gameState.character).then(r => !!r)",
        await_promise=True,
    )
    page.wait_for(scene_loaded, 30)
    time.sleep(0.5)
    portrait = img_state(page, "document.getElementById('scene-image')")
    results["retro.portrait"] = {
        "must": True,
        "ok": bool(
            portrait_ok
            and portrait
            and portrait["width"] > 0
            and portrait["srcLength"] != first_src_length
        ),
        **(portrait or {}),
        "problems": page.problems(),
    }
    page.screenshot(out / "aidnd-retro-portrait.png")

    # The item modal: reported only (the page prefixes the data URI a second time).
    page.evaluate("showItemDetails('Dagger')")
    page.evaluate("generateItemImageForModal('Dagger')", await_promise=True)
    item_img = "document.getElementById('item-generated-image-Dagger')"
    page.wait_for(f"{item_img} && {item_img}.style.display === 'block' && {item_img}.complete", 30)
    item = img_state(page, item_img) or {}
    results["retro.item_modal"] = {
        "must": False,
        "ok": item.get("width", 0) > 0,
        "page_bug": str(item.get("src", "")).startswith("data:image/png;base64,data:image/"),
        **item,
        "problems": page.problems(),
    }
    page.evaluate("closeModal('item-modal')")


def check_portal(page: Page, site: str, server: str, out: Path, results: dict[str, Any]) -> None:
    page.goto(f"{site}/{PORTAL}")
    time.sleep(1)
    page.problems()  # its first auto-connect goes to the default http://localhost:8000
    page.evaluate(
        f"(() => {{ const i = document.getElementById('baseUrl'); i.value = {json.dumps(server)};"
        " i.dispatchEvent(new Event('input')); })()"
    )
    page.evaluate("document.getElementById('healthBtn').click()")
    page.evaluate("document.getElementById('refreshImages').click()")
    page.wait_for(
        "(() => { const imgs = [...document.querySelectorAll('#imageGrid img')];"
        " return imgs.length > 0 && imgs.every(i => i.complete); })()",
        30,
    )
    page.wait_for("document.getElementById('healthLog').textContent.includes('\"status\"')", 15)
    images = page.evaluate(
        "[...document.querySelectorAll('#imageGrid img')].map(i =>"
        " ({src: i.getAttribute('src'), width: i.naturalWidth, height: i.naturalHeight}))"
    )
    health = page.evaluate("document.getElementById('healthLog').textContent.slice(0, 200)")
    results["portal.health"] = {"must": True, "ok": '"status": "ok"' in health, "log": health[:120]}
    results["portal.thumbnails"] = {
        "must": True,
        "ok": bool(images) and all(i["width"] > 0 for i in images),
        "images": images,
        "problems": page.problems(),
    }
    # Upstream's game-session API (/api/v1/game/..., /api/v1/frontend/...) is not the image
    # service's; reported only.
    page.evaluate("document.getElementById('refreshSessions').click()")
    time.sleep(1)
    sessions = page.evaluate(
        "document.getElementById('sessionList').textContent.trim().slice(0, 160)"
    )
    results["portal.sessions"] = {
        "must": False,
        "ok": False,
        "text": sessions,
        "problems": page.problems(),
    }
    page.evaluate("document.getElementById('imagesPanel').scrollIntoView({block: 'end'})")
    time.sleep(0.3)
    page.screenshot(out / "aidnd-portal.png")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("export_dir", type=Path, help="folder with the exported AI-DnD pages")
    parser.add_argument("server", help="Worldbase base URL, e.g. http://127.0.0.1:8123")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the screenshots")
    parser.add_argument(
        "--port", type=int, default=3000, help="static server port (CORS: 3000 or 5173)"
    )
    args = parser.parse_args()
    server = args.server.rstrip("/")
    args.out.mkdir(parents=True, exist_ok=True)

    retro_source = (args.export_dir / RETRO).read_text(encoding="utf-8")
    if retro_source.count("class LayoutManager") > 1:
        sys.exit(f"{RETRO} declares class LayoutManager twice and does not run; export 1c76f16's")
    (args.export_dir / PORTAL).stat()

    with tempfile.TemporaryDirectory(prefix="aidnd-pages-") as tmp:
        root = Path(tmp)
        site_dir = root / "site"
        site_dir.mkdir()
        replaced = retro_source.count(UPSTREAM_BASE)
        (site_dir / RETRO).write_text(retro_source.replace(UPSTREAM_BASE, server), encoding="utf-8")
        shutil.copy(args.export_dir / PORTAL, site_dir / PORTAL)
        print(
            f"copy of {RETRO}: {UPSTREAM_BASE} -> {server} ({replaced} places); {PORTAL} unchanged"
        )

        static = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(args.port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(site_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        site = f"http://127.0.0.1:{args.port}"
        browser = None
        results: dict[str, Any] = {}
        try:
            wait_http(f"{site}/{PORTAL}")
            browser, ws_url = start_chromium(root / "profile")
            with connect(ws_url, max_size=256 * 1024 * 1024, open_timeout=10) as ws:
                page = Page(ws)
                for domain in ("Page", "Runtime", "Network"):
                    page.call(f"{domain}.enable")
                page.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=WIDTH,
                    height=HEIGHT,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                for name, check in (
                    ("retro", lambda: check_retro(page, site, args.out, results)),
                    ("portal", lambda: check_portal(page, site, server, args.out, results)),
                ):
                    try:
                        check()
                    except (TimeoutError, RuntimeError) as exc:
                        results[f"{name}.error"] = {
                            "must": True,
                            "ok": False,
                            "error": str(exc),
                            "problems": page.problems(),
                        }
        finally:
            if browser is not None:
                browser.terminate()
                browser.wait(timeout=10)
            static.terminate()
            static.wait(timeout=10)

    print(json.dumps(results, indent=2))
    failed = [name for name, result in results.items() if result["must"] and not result["ok"]]
    print("FAILED: " + ", ".join(failed) if failed else "all required checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
