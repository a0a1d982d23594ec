"""WMS layers: capabilities when saved, tiles through the layer's WMS (MapServer on loopback)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import morecantile
import pytest
from fastapi.testclient import TestClient

from tests.apps.samsyn.conftest import CALLERS, WMS_CONFIG, Team
from tests.builders import assert_error, run_db
from tests.conftest import free_port
from tests.mapserver import (
    BLUE,
    GREEN,
    MAGENTA,
    RED,
    STAND_IN_CAPABILITIES,
    YELLOW,
    WmsServer,
    pixel,
    require_mapserver,
)
from worldbase.settings import Settings

TILE = (4, 8, 5)  # lon 0..22.5, lat ~41..55.8: the four quadrants, and nothing east of lon 20
PROBES = {(5.0, 55.0): "nw", (15.0, 55.0): GREEN, (5.0, 45.0): YELLOW, (15.0, 45.0): BLUE}


@pytest.fixture(autouse=True)
def _real_mapserver() -> None:
    # These tests check what MapServer draws and is asked, not the stand-in's blank images.
    require_mapserver()


def tile_url(layer_id: str, query: str = "", tile: tuple[int, int, int] = TILE) -> str:
    z, x, y = tile
    return f"/api/layers/{layer_id}/tiles/{z}/{x}/{y}{query}"


def check_colours(png: bytes, nw: tuple[int, int, int], size: int = 256) -> None:
    z, x, y = TILE
    tms = morecantile.tms.get("WebMercatorQuad")
    box = tms.xy_bounds(morecantile.Tile(x, y, z))

    def probe(lon: float, lat: float) -> tuple[int, ...]:
        px, py = tms.xy(lon, lat)
        col = int((px - box.left) / (box.right - box.left) * size)
        row = int((box.top - py) / (box.top - box.bottom) * size)
        return pixel(png, col, row)

    for (lon, lat), colour in PROBES.items():
        assert probe(lon, lat) == (*(nw if colour == "nw" else colour), 255), (lon, lat)
    assert probe(21.5, 50.0)[3] == 0


def create(team: Team, who: str = "owner", **config: Any) -> Any:
    return team.client.post(
        "/api/layers",
        json={"name": "Quadrants", "source_type": "wms", "source_config": WMS_CONFIG | config},
        headers=team.as_(who),
    )


def saved_directly(team: Team, **config: Any) -> str:
    """A WMS layer stored without the capabilities check (as seeds and imports may)."""
    from worldbase.apps.samsyn.layers import service as service_layers
    from worldbase.core import users

    async def make(session: Any) -> str:
        owner = await users.get(session, user_id=uuid.UUID(team.users["owner"]["id"]))
        assert owner is not None
        values = {"name": "Direct", "source_type": "wms", "source_config": WMS_CONFIG | config}
        layer = await service_layers.create(session, user=owner, values=values)
        return str(layer.id)

    return str(run_db(team.client, make))


class FlakyWms:
    """A WMS on loopback that answers 503 while `down`, else the stand-in capabilities."""

    def __init__(self) -> None:
        self.down = True
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                status, body = 503, b"down for maintenance"
                if not flaky.down:
                    status, body = 200, STAND_IN_CAPABILITIES.format(url=flaky.url).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/wms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def layers_total(team: Team) -> int:
    return int(team.client.get("/api/layers", headers=team.as_("owner")).json()["total"])


# --- Capabilities -----------------------------------------------------------------------------


def test_capabilities_fill_bounds_and_time(team: Team) -> None:
    response = create(team)
    assert response.status_code == 201, response.text
    config = response.json()["source_config"]
    assert config["bounds"] == [[0.0, 40.0], [20.0, 60.0]]
    assert config["temporal"] == {
        "enabled": True,
        "parameter": "TIME",
        "start": "2024-01-01",
        "end": "2024-02-01",
        "resolution": "monthly",
    }
    # What the client says wins; an enabled range without dates is filled.
    mine = {"bounds": [[1.0, 41.0], [2.0, 42.0]], "temporal": {"enabled": False}}
    config = create(team, **mine).json()["source_config"]
    assert config["bounds"] == mine["bounds"] and config["temporal"]["enabled"] is False
    config = create(team, temporal={"enabled": True}).json()["source_config"]
    assert config["temporal"]["start"] == "2024-01-01" and config["temporal"]["enabled"] is True
    config = create(team, version="1.1.1").json()["source_config"]
    assert config["bounds"] == [[0.0, 40.0], [20.0, 60.0]] and config["version"] == "1.1.1"


def test_unknown_layer_names_are_422(team: Team) -> None:
    body = assert_error(create(team, layers="quads,nope"), 422)
    assert body["detail"]["missing"] == ["nope"] and "quads" in body["detail"]["available"]
    assert "tindex" not in body["detail"]["available"]
    assert layers_total(team) == 0
    layer = create(team).json()
    url = f"/api/layers/{layer['id']}"
    update = {"source_config": WMS_CONFIG | {"layers": "gone"}}
    assert_error(team.client.put(url, json=update, headers=team.as_("owner")), 422)
    assert team.client.get(url, headers=team.as_("owner")).json()["source_config"]["layers"] == (
        "quads"
    )
    ok = team.client.put(
        url, json={"source_config": WMS_CONFIG | {"styles": ""}}, headers=team.as_("owner")
    )
    assert ok.status_code == 200 and ok.json()["source_config"]["bounds"][0] == [0.0, 40.0]


def test_a_wrong_or_forbidden_wms_is_not_saved(team: Team, wms_server: WmsServer) -> None:
    base = wms_server.base
    for path, needle in (
        ("/exception", "Invalid layer"),
        ("/html", "Maintenance"),
        (f"/missing-{uuid.uuid4().hex}", "HTTP 404"),
    ):
        body = assert_error(create(team, url=f"{base}{path}"), 502)
        assert needle in body["message"], body
        assert body["detail"]["upstream"].startswith(base)
    # Refused by the source policy is not "unreachable": still refused, before any request.
    for url in ("http://169.254.169.254/wms", "http://localhost:9/wms", "http://10.0.0.1/wms"):
        body = assert_error(create(team, url=url), 403)
        assert "WORLDBASE_SOURCE_ALLOWLIST" in body["detail"]["settings"]
    assert layers_total(team) == 0


def test_an_unreachable_wms_layer_is_saved_with_a_warning(
    team: Team,
    wms_server: WmsServer,
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
) -> None:
    base = wms_server.base
    closed = f"http://127.0.0.1:{free_port()}/wms"
    impatient = app_factory(
        make_settings(worldbase_wms_timeout=0.3, worldbase_source_allowlist=[f"{base}/", closed])
    )
    for url, reason in (
        (f"{base}/error", "HTTP 500"),
        (f"{base}/slow", "did not answer"),
        (closed, "could not be reached"),
    ):
        body = {"name": "Down", "source_type": "wms", "source_config": WMS_CONFIG | {"url": url}}
        response = impatient.post("/api/layers", json=body, headers=team.as_("owner"))
        assert response.status_code == 201, response.text
        layer = response.json()
        assert len(layer["warnings"]) == 1 and reason in layer["warnings"][0], layer
        config = layer["source_config"]
        assert config["capabilitiesPending"]["reason"] and "bounds" not in config
        # Read again while still down: the same layer, nothing rewritten.
        again = impatient.get(f"/api/layers/{layer['id']}", headers=team.as_("owner")).json()
        assert again["updated_at"] == layer["updated_at"] and again["warnings"]
    assert layers_total(team) == 3


def test_pending_capabilities_are_read_when_the_wms_is_back(
    team: Team,
    wms_server: WmsServer,
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
) -> None:
    flaky = FlakyWms()
    try:
        client = app_factory(make_settings(worldbase_source_allowlist=[f"{flaky.url}"]))
        body = {
            "name": "Back",
            "source_type": "wms",
            "source_config": WMS_CONFIG | {"url": flaky.url},
        }
        # A client cannot mark its own configuration pending: the server's key is dropped.
        body["source_config"]["capabilitiesPending"] = {"reason": "mine"}
        layer = client.post("/api/layers", json=body, headers=team.as_("owner")).json()
        assert "HTTP 503" in layer["warnings"][0]
        flaky.down = False
        url = f"/api/layers/{layer['id']}"
        read = client.get(url, headers=team.as_("stranger"))
        assert read.status_code == 404  # a private layer stays private
        read = client.get(url, headers=team.as_("owner")).json()
        assert read["warnings"] == [] and "capabilitiesPending" not in read["source_config"]
        assert read["source_config"]["bounds"] == [[0.0, 40.0], [20.0, 60.0]]
        # Saving again while it is down marks it again; a save once it is back clears it.
        flaky.down = True
        update = {"source_config": read["source_config"]}
        saved = client.put(url, json=update, headers=team.as_("owner")).json()
        assert saved["warnings"]
        flaky.down = False
        saved = client.put(url, json=update, headers=team.as_("owner")).json()
        assert saved["warnings"] == [], saved
        # A name the WMS lacks is still a 422 once it answers.
        update = {"source_config": WMS_CONFIG | {"url": flaky.url, "layers": "nope"}}
        assert_error(client.put(url, json=update, headers=team.as_("owner")), 422)
    finally:
        flaky.close()


# --- Tiles ------------------------------------------------------------------------------------


def test_a_tile_is_the_wms_image(team: Team, wms_server: WmsServer) -> None:
    layer = create(team).json()
    response = team.client.get(tile_url(layer["id"]), headers=team.as_("owner"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert "max-age" in response.headers["cache-control"]
    check_colours(response.content, RED)  # the WMS's default time
    # Cached: the same tile again, and a revalidation, do not ask the WMS.
    asked = wms_server.getmaps()
    again = team.client.get(tile_url(layer["id"]), headers=team.as_("owner"))
    assert again.content == response.content and wms_server.getmaps() == asked
    etag = response.headers["etag"]
    assert again.headers["etag"] == etag
    revalidated = team.client.get(
        tile_url(layer["id"]), headers=team.as_("owner") | {"If-None-Match": etag}
    )
    assert revalidated.status_code == 304 and wms_server.getmaps() == asked
    # The time step is passed through as TIME.
    later = team.client.get(tile_url(layer["id"], "?time=2024-02-01"), headers=team.as_("owner"))
    assert later.status_code == 200 and later.headers["etag"] != etag
    check_colours(later.content, MAGENTA)
    assert "TIME=2024-02-01" in wms_server.requests[-1]
    big = team.client.get(tile_url(layer["id"], "?tilesize=512"), headers=team.as_("owner"))
    assert big.status_code == 200
    check_colours(big.content, RED, size=512)


def test_a_config_change_makes_new_tiles(team: Team, wms_server: WmsServer) -> None:
    layer = create(team).json()
    first = team.client.get(tile_url(layer["id"]), headers=team.as_("owner"))
    update = {"source_config": layer["source_config"] | {"transparent": False}}
    assert (
        team.client.put(
            f"/api/layers/{layer['id']}", json=update, headers=team.as_("owner")
        ).status_code
        == 200
    )
    asked = wms_server.getmaps()
    second = team.client.get(tile_url(layer["id"]), headers=team.as_("owner"))
    assert second.headers["etag"] != first.headers["etag"] and wms_server.getmaps() == asked + 1
    assert "TRANSPARENT=FALSE" in wms_server.requests[-1]


def test_bad_tile_requests(team: Team) -> None:
    layer = create(team).json()
    plain = create(team, temporal={"enabled": False}).json()
    for url, status in (
        (tile_url(layer["id"], "?time=2023-12-31"), 400),
        (tile_url(layer["id"], "?time=2024-03-01T00:00:00Z"), 400),
        (tile_url(layer["id"], "?time=yesterday"), 400),
        (tile_url(plain["id"], "?time=2024-01-01"), 400),
        (tile_url(layer["id"], "?tilesize=300"), 422),
        (tile_url(layer["id"], tile=(4, 16, 0)), 422),
        (tile_url(layer["id"], tile=(23, 0, 0)), 422),
        (tile_url(str(uuid.uuid4())), 404),
    ):
        assert_error(team.client.get(url, headers=team.as_("owner")), status)
    ok = team.client.get(
        tile_url(layer["id"], "?time=2024-02-01T12:00:00Z"), headers=team.as_("owner")
    )
    assert ok.status_code == 200


def test_who_reads_a_wms_tile(team: Team) -> None:
    map_ = team.shared_map()
    layer = create(team).json()
    team.add_layer(map_["id"], layer["id"])
    for who in CALLERS:
        response = team.client.get(tile_url(layer["id"]), headers=team.as_(who))
        if who in ("stranger", "anonymous"):
            assert_error(response, 404)
        else:
            assert response.status_code == 200, (who, response.text)


def test_upstream_failures_of_tiles(
    team: Team,
    wms_server: WmsServer,
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
) -> None:
    base = wms_server.base
    for path, status, needle in (
        ("/error", 502, "HTTP 500"),
        ("/exception", 502, "Invalid layer"),
        ("/html", 502, "Maintenance"),
        ("/big", 502, "larger than"),
    ):
        layer_id = saved_directly(team, url=f"{base}{path}")
        body = assert_error(team.client.get(tile_url(layer_id), headers=team.as_("owner")), status)
        assert needle in body["message"], body
    gone = saved_directly(team, layers="vanished")  # renamed upstream since it was saved
    body = assert_error(team.client.get(tile_url(gone), headers=team.as_("owner")), 502)
    assert "msWMSLoadGetMapParams" in body["message"]
    forbidden = saved_directly(team, url="http://169.254.169.254/latest/wms")
    assert_error(team.client.get(tile_url(forbidden), headers=team.as_("owner")), 403)
    slow = saved_directly(team, url=f"{base}/slow")
    impatient = app_factory(
        make_settings(worldbase_wms_timeout=0.3, worldbase_source_allowlist=[f"{base}/"])
    )
    assert_error(impatient.get(tile_url(slow), headers=team.as_("owner")), 504)


def test_time_slices_persist_and_deleting_forgets(team: Team, wms_server: WmsServer) -> None:
    from worldbase.geo.tile_cache import flush_pending

    layer = create(team).json()
    prefix = f"tiles/samsyn-wms/{layer['id']}/"
    storage = team.client.app.state.services.storage  # type: ignore[attr-defined]

    def stored() -> list[str]:
        async def keys() -> list[str]:
            await flush_pending()
            return [obj.key async for obj in storage.list(prefix)]

        return list(team.client.portal.call(keys))  # type: ignore[union-attr]

    now = team.client.get(tile_url(layer["id"]), headers=team.as_("owner"))
    assert now.status_code == 200 and stored() == []  # "now" changes: memory tier only
    then = team.client.get(tile_url(layer["id"], "?time=2024-02-01"), headers=team.as_("owner"))
    assert then.status_code == 200 and len(stored()) == 1  # a time slice: kept in storage too
    response = team.client.delete(f"/api/layers/{layer['id']}", headers=team.as_("owner"))
    assert response.status_code == 204 and stored() == []


def test_a_wms_layer_without_layer_names_is_a_draft(team: Team, wms_server: WmsServer) -> None:
    config = {"url": WMS_CONFIG["url"]}
    draft = team.client.post(
        "/api/layers",
        json={"name": "Draft", "source_type": "wms", "source_config": config},
        headers=team.as_("owner"),
    )
    assert draft.status_code == 201, draft.text
    layer = draft.json()
    assert layer["source_config"] == config and layer["warnings"] == []
    # Its tiles say what is missing.
    body = assert_error(team.client.get(tile_url(layer["id"]), headers=team.as_("owner")), 422)
    assert "layers" in body["message"]
    # Named later: checked against the capabilities as ever, then served.
    url = f"/api/layers/{layer['id']}"
    wrong = {"source_config": config | {"layers": "nope"}}
    assert_error(team.client.put(url, json=wrong, headers=team.as_("owner")), 422)
    named = team.client.put(
        url, json={"source_config": config | {"layers": "quads"}}, headers=team.as_("owner")
    )
    assert named.status_code == 200, named.text
    tile = team.client.get(tile_url(layer["id"]), headers=team.as_("owner"))
    assert tile.status_code == 200, tile.text
