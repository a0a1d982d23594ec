"""/viewer in a real browser: headless Chromium opens a private map through the page, the
page fetches the style and the layer's vector tiles with the bearer token, and draws them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from PIL import Image

from tests.browser import chromium
from tests.conftest import free_port, service_missing
from worldbase.app import create_app
from worldbase.core.viewer import VENDOR
from worldbase.settings import Settings

FILL = (220, 20, 60)  # crimson, nothing else on the page has it


class RequestLog:
    """ASGI wrapper that records (path, status) of every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def record(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, record)


@pytest.fixture
def live_server(
    make_settings: Callable[..., Settings], migrated_served: None
) -> Iterator[tuple[str, RequestLog]]:
    log = RequestLog(create_app(make_settings()))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(log, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _private_map_with_polygon(base: str) -> tuple[str, str, str]:
    with httpx.Client(base_url=base, timeout=30) as http:
        reply = http.post(
            "/api/auth/register",
            json={
                "email": f"viewer-{uuid.uuid4().hex[:8]}@example.org",
                "password": "pass phrase 123",
            },
        )
        assert reply.status_code == 201, reply.text
        headers = {"Authorization": f"Bearer {reply.json()['access_token']}"}
        map_ = http.post(
            "/api/maps",
            json={
                "name": "Viewer",
                "center_lat": 0,
                "center_lng": 0,
                "zoom": 2,
                "basemap": "none",
                "permission_level": "private",
            },
            headers=headers,
        ).json()
        layer = http.post(
            "/api/layers",
            json={
                "name": "Big square",
                "source_type": "vector",
                "style_config": {"fill": "#dc143c", "fillOpacity": 1, "stroke": "#dc143c"},
            },
            headers=headers,
        ).json()
        square = [[[-60, -40], [60, -40], [60, 40], [-60, 40], [-60, -40]]]
        reply = http.post(
            f"/api/layers/{layer['id']}/features",
            json={
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": square},
                        "properties": {"name": "square"},
                    }
                ],
            },
            headers=headers,
        )
        assert reply.status_code == 201, reply.text
        reply = http.post(
            f"/api/maps/{map_['id']}/layers", json={"layer_id": layer["id"]}, headers=headers
        )
        assert reply.status_code == 201, reply.text
        return map_["id"], layer["id"], headers["Authorization"].split()[1]


def _fill_pixels(png: Path) -> int:
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    return int((np.abs(pixels - np.array(FILL)) < 40).all(axis=2).sum())


def test_viewer_draws_a_private_maps_vector_tiles(
    live_server: tuple[str, RequestLog], tmp_path: Path
) -> None:
    if not (VENDOR / "maplibre-gl.js").exists():
        service_missing("MapLibre (`make install` vendors it)")
    base, log = live_server
    map_id, layer_id, token = _private_map_with_polygon(base)
    page = httpx.get(f"{base}/viewer")
    assert page.status_code == 200 and "maplibre-gl.js" in page.text

    with chromium(tmp_path / "profile") as page:
        page.goto(f"{base}/viewer?map={map_id}&token={token}")
        assert page.wait_for("document.body.dataset.state") is not None
        page.wait_for("document.body.dataset.state === 'idle'")
        loaded = int(page.evaluate("document.body.dataset.tilesLoaded"))
        shot = page.screenshot(tmp_path / "viewer.png")
    assert loaded > 0

    tiles = [
        (path, status) for path, status in log.seen if f"/api/layers/{layer_id}/tiles/" in path
    ]
    assert f"/api/maps/{map_id}/style.json" in [p for p, s in log.seen if s == 200]
    assert tiles and all(status == 200 for _, status in tiles), tiles
    # The square covers most of the world at zoom 2: a large crimson area was drawn.
    assert _fill_pixels(shot) > 20_000


def test_viewer_without_token_cannot_read_a_private_map(
    live_server: tuple[str, RequestLog], tmp_path: Path
) -> None:
    base, log = live_server
    map_id, layer_id, _ = _private_map_with_polygon(base)
    with chromium(tmp_path / "profile") as page:
        page.goto(f"{base}/viewer?map={map_id}")
        page.wait_for("document.body.dataset.state === 'failed'")
        shot = page.screenshot(tmp_path / "viewer.png")
    assert (f"/api/maps/{map_id}/style.json", 404) in log.seen or (
        f"/api/maps/{map_id}/style.json",
        401,
    ) in log.seen
    assert not any(f"/api/layers/{layer_id}/tiles/" in path for path, _ in log.seen)
    assert _fill_pixels(shot) == 0
