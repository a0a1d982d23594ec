"""What the `/api/v1/wms*` tests need besides the served app: WMS servers on loopback (the
MapServer of `tests.mapserver`, and `InfoWms`, which answers GetFeatureInfo in several
formats and records what it was asked), the environment that allows them, and an admin."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.mapserver import STAND_IN_CAPABILITIES, WmsServer, start_wms

ADMIN_EMAIL = "wms-admin@example.org"
ADMIN_PASSWORD = "wms-admin-password-1"
FEATURE = {"type": "Feature", "properties": {"depth": 42.5, "name": "Deep", "_fid": 1}}
HTML = (
    "<html><body><table><tr><th>depth</th><th>name</th></tr>"
    "<tr><td>42.5</td><td>Deep &amp; blue</td></tr></table></body></html>"
)


class InfoWms:
    """GetFeatureInfo by INFO_FORMAT: JSON, an HTML table or text; `/empty` has no features;
    `/caps` the stand-in capabilities while `caps_up`, else HTTP 503."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.caps_up = True
        seen, wms = self.requests, self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k.upper(): v[0] for k, v in parse_qs(parts.query).items()}
                seen.append(query | {"PATH": parts.path})
                info = query.get("INFO_FORMAT", "")
                features = [] if parts.path == "/empty" else [FEATURE]
                status = 200
                if parts.path == "/caps":
                    body, kind = STAND_IN_CAPABILITIES.format(url=wms.base), "text/xml"
                    status = 200 if wms.caps_up else 503
                elif "json" in info:
                    body = json.dumps({"type": "FeatureCollection", "features": features})
                    kind = "application/json"
                elif "html" in info:
                    body, kind = HTML, "text/html; charset=utf-8"
                else:
                    body, kind = "depth = 42.5", "text/plain"
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def upstreams(tmp: Path) -> Iterator[tuple[WmsServer, InfoWms]]:
    """MapServer and `InfoWms`, for a module's lifetime."""
    info = InfoWms()
    try:
        for wms in start_wms(tmp):
            yield wms, info
    finally:
        info.close()


def served_env(*allowed: str) -> dict[str, str]:
    """The served app's environment: the upstreams allowed, a quick WMS timeout, an admin."""
    return {
        "WORLDBASE_SOURCE_ALLOWLIST": ",".join(f"{base}/" for base in allowed),
        "SAMSYN_WMS_TIMEOUT": "1",
        "WORLDBASE_ADMIN_EMAIL": ADMIN_EMAIL,
        "WORLDBASE_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }


_admin_tokens: dict[str, str] = {}


def admin_headers(api: httpx.Client) -> dict[str, str]:
    """An admin's headers (a password admin: see the Clerk `admin` fixture's note), logged
    in once per server (logins are rate limited)."""
    server = str(api.base_url)
    if server not in _admin_tokens:
        body = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        answer = api.post("/api/auth/login", json=body)
        assert answer.status_code == 200, answer.text
        _admin_tokens[server] = answer.json()["access_token"]
    return {"Authorization": f"Bearer {_admin_tokens[server]}"}


def error(answer: httpx.Response, status: int) -> dict[str, Any]:
    """The error body, after checking the status and the project's error shape."""
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == "error" and body["code"] == status and body["message"], body
    return body
