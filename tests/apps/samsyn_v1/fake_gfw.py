"""A fake Global Fishing Watch API on loopback: checks the bearer token and the 4Wings tile
query as the real one does, and has datasets that misbehave (for the proxy's tests and the
schema fuzzer)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "gfw-secret-token-0123456789abcdef"
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


@contextmanager
def fake_gfw() -> Iterator[FakeGfw]:
    """A fake GFW on 127.0.0.1 that takes `TOKEN`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Gfw", (_Gfw,), {}))
    server.daemon_threads = True
    fake = FakeGfw(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass.fake = fake  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
