"""`/api/v1/gfw/...`: Global Fishing Watch heatmap tiles through the server's token, against
a fake GFW on loopback that checks the bearer token and the query as the real API does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.apps.samsyn_v1.conftest import ClerkUser, V1Server
from tests.builders import assert_error

TOKEN = "gfw-secret-token-0123456789abcdef"
PATH = "/api/v1/gfw/v3/4wings/tile/heatmap"
QUERY = {
    "format": "MVT",
    "interval": "MONTH",
    "datasets[0]": "public-global-fishing-effort:latest",
    "date-range": "2024-01-01,2024-12-31",
}
DATASETS = {"public-global-fishing-effort:latest", "slow", "broken", "revoked", "drop", "echo"}


@dataclass
class FakeGfw:
    url: str
    hits: list[str] = field(default_factory=list)


def _problem(status: int, detail: str) -> bytes:
    return json.dumps(
        {"statusCode": status, "error": "Unprocessable Entity", "messages": [{"detail": detail}]}
    ).encode()


class _Gfw(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeGfw

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.fake.hits.append(self.path)
        query = dict(parse_qsl(parts.query))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, b'{"error": "Unauthorized"}')
            return
        pieces = parts.path.strip("/").split("/")
        if pieces[:4] != ["v3", "4wings", "tile", "heatmap"] or len(pieces) != 7:
            self._send(404, b'{"error": "Not Found"}')
            return
        dataset = query.get("datasets[0]", "")
        if dataset not in DATASETS or query.get("format") not in ("MVT", "PNG", None):
            message = f"unknown dataset {dataset}" if dataset != "echo" else f"token {TOKEN}"
            self._send(422, _problem(422, message))
            return
        if dataset == "echo":
            self._send(422, _problem(422, f"bad request with Authorization: {TOKEN}"))
            return
        if dataset == "slow":
            time.sleep(3)
        if dataset == "broken":
            self._send(500, b"<html>oops</html>", "text/html")
            return
        if dataset == "revoked":
            self._send(403, b'{"error": "Forbidden"}')
            return
        if dataset == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        z, x, y = pieces[4:]
        if z == "5":
            self._send(404, b'{"error": "no data"}')  # GFW's empty tile
            return
        kind = "image/png" if query.get("format") == "PNG" else "application/vnd.mapbox-vector-tile"
        self._send(200, f"tile {z}/{x}/{y} {sorted(query.items())}".encode(), kind)


@pytest.fixture(scope="module")
def gfw() -> Iterator[FakeGfw]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Gfw", (_Gfw,), {}))
    server.daemon_threads = True
    fake = FakeGfw(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass.fake = fake  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def v1_env(gfw: FakeGfw) -> dict[str, str]:
    return {"GFW_API_TOKEN": TOKEN, "GFW_API_URL": gfw.url, "GFW_TIMEOUT": "1"}


def test_tiles_for_everyone_cached(
    api: httpx.Client, gfw: FakeGfw, owner: ClerkUser, stranger: ClerkUser, admin: ClerkUser
) -> None:
    for n, headers in enumerate(({}, owner.headers, stranger.headers, admin.headers)):
        tile = api.get(f"{PATH}/3/4/{n}", params=QUERY, headers=headers)
        assert tile.status_code == 200, tile.text
        assert tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        assert tile.content.startswith(f"tile 3/4/{n} ".encode())
        assert tile.headers["cache-control"] == "public, max-age=3600"
    before = len(gfw.hits)
    again = api.get(f"{PATH}/3/4/0", params=QUERY)
    assert again.content.startswith(b"tile 3/4/0 ") and len(gfw.hits) == before
    # The same query in another order: the same tile, from the tile cache.
    shuffled = dict(reversed(list(QUERY.items())))
    assert api.get(f"{PATH}/3/4/0", params=shuffled).content == again.content
    assert len(gfw.hits) == before
    revalidated = api.get(
        f"{PATH}/3/4/0", params=QUERY, headers={"If-None-Match": again.headers["etag"]}
    )
    assert revalidated.status_code == 304
    assert any(hit.startswith("/v3/4wings/tile/heatmap/3/4/0?") for hit in gfw.hits)
    png = api.get(f"{PATH}/1/1/1", params=QUERY | {"format": "PNG"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    # GFW has nothing there: an empty tile.
    assert api.get(f"{PATH}/5/1/1", params=QUERY).status_code == 204
    health = api.get("/api/v1/gfw/health").json()
    assert health == {"status": "ok", "configured": True}


def test_bad_tiles_and_queries_are_422(api: httpx.Client, gfw: FakeGfw) -> None:
    before = len(gfw.hits)
    for path, params in (
        ("21/0/0", QUERY),
        ("1/2/0", QUERY),
        ("1/0/-1", QUERY),
        ("a/0/0", QUERY),
        ("1/0/0", QUERY | {"format": "GIF"}),
        ("1/0/0", QUERY | {"interval": "WEEK"}),
        ("1/0/0", QUERY | {"date-range": "last year"}),
        ("1/0/0", QUERY | {"datasets[0]": "a b"}),
        ("1/0/0", QUERY | {"bad name": "x"}),
        ("1/0/0", QUERY | {"<script>": "x"}),
        ("1/0/0", QUERY | {"filters[0]": "x" * 1001}),
        ("1/0/0", QUERY | {f"datasets[{n}]": "x" for n in range(1, 40)}),
    ):
        assert_error(api.get(f"{PATH}/{path}", params=params), 422)
    assert len(gfw.hits) == before  # nothing of it reached GFW
    # GFW's own refusal of the query is the caller's 422, in GFW's words.
    body = assert_error(api.get(f"{PATH}/1/0/0", params=QUERY | {"datasets[0]": "nope"}), 422)
    assert "unknown dataset nope" in body["message"]


def test_upstream_faults(api: httpx.Client, v1_server: V1Server) -> None:
    for dataset, status in (("broken", 502), ("revoked", 502), ("drop", 502), ("slow", 504)):
        answer = api.get(f"{PATH}/2/1/1", params=QUERY | {"datasets[0]": dataset})
        body = assert_error(answer, status)
        assert "Global Fishing Watch" in body["message"], body
    # Faults are not cached: the next request asks GFW again (and still fails).
    assert_error(api.get(f"{PATH}/2/1/1", params=QUERY | {"datasets[0]": "broken"}), 502)


def test_the_token_stays_on_the_server(api: httpx.Client, v1_server: V1Server) -> None:
    echoed = api.get(f"{PATH}/2/1/1", params=QUERY | {"datasets[0]": "echo"})
    assert_error(echoed, 422)
    answers = [echoed] + [
        api.get(path, params=QUERY) for path in (f"{PATH}/1/0/0", "/api/v1/gfw/health")
    ]
    answers.append(api.get("/openapi.json"))
    for answer in answers:
        assert TOKEN not in answer.text and TOKEN not in str(answer.headers)
    assert TOKEN not in v1_server.log.read_text(errors="replace")
