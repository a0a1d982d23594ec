"""GDAL's only way out: a loopback relay that makes each of GDAL's HTTP requests through the
source policy's client.

GDAL's /vsicurl/ would resolve names and follow redirects by itself, out of reach of any
check. So GDAL is never given a remote URL: `relay_path(url, policy)` registers the URL
under a random token and returns `/vsicurl/http://127.0.0.1:<port>/<token>/source.tif`.
Each HEAD and range GET that GDAL sends there is made upstream by `core.source_policy`'s
client: the URL checked, every redirect hop checked, the address checked at connect
(rebinding fails). The token is stable per URL and policy, so GDAL's caches (file size,
headers, blocks) keep working; after a redirect the final URL is reused for a while, as
GDAL did, so a tile costs no extra round trip upstream.

Why a relay and not rasterio's `opener=`: its registry is per thread (a context variable),
and the readers here are shared by a thread pool.

The relay's own failures (refused, unreachable, timed out) answer GDAL 424, a status GDAL
does not retry. Failures are kept per URL (`last_error`) so that the raster routes answer
with the policy's 403 or the upstream's 502/504 rather than GDAL's "could not be read".
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from worldbase.core import source_policy
from worldbase.core.errors import DomainError, UpstreamError, UpstreamTimeout
from worldbase.core.source_policy import SourceNotAllowed, SourcePolicy

USER_AGENT = "worldbase-raster/1"
MAX_BODY = 128 * 1024 * 1024  # one answer GDAL asked for (range reads are far smaller)
FINAL_URL_TTL = 300.0
MAX_ENTRIES = 4096
UPSTREAM_TIMEOUT = httpx.Timeout(15.0, connect=5.0)  # under GDAL's own 20 s
_PASSED_HEADERS = ("content-type", "content-range", "accept-ranges", "last-modified", "etag")


@dataclass
class _Entry:
    url: str
    policy: SourcePolicy
    final: str | None = None
    final_at: float = 0.0
    error: DomainError | None = field(default=None)

    def target(self) -> str:
        if self.final and time.monotonic() - self.final_at < FINAL_URL_TTL:
            return self.final
        return self.url


class _Relay:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._tokens: dict[tuple[str, SourcePolicy], str] = {}
        self._clients: dict[SourcePolicy, httpx.Client] = {}
        self._server: ThreadingHTTPServer | None = None

    def _port(self) -> int:
        if self._server is None:
            server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, name="raster-relay", daemon=True).start()
            self._server = server
        return int(self._server.server_address[1])

    def register(self, url: str, policy: SourcePolicy) -> str:
        with self._lock:
            port = self._port()
            token = self._tokens.get((url, policy))
            if token is None or token not in self._entries:
                token = secrets.token_urlsafe(18)
                self._entries[token] = _Entry(url, policy)
                self._tokens[(url, policy)] = token
                while len(self._entries) > MAX_ENTRIES:
                    _, old = self._entries.popitem(last=False)
                    self._tokens.pop((old.url, old.policy), None)
            self._entries.move_to_end(token)
            return f"/vsicurl/http://127.0.0.1:{port}/{token}/source.tif"

    def entry(self, token: str) -> _Entry | None:
        with self._lock:
            return self._entries.get(token)

    def client(self, policy: SourcePolicy) -> httpx.Client:
        with self._lock:
            found = self._clients.get(policy)
            if found is None:
                limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
                found = source_policy.client(
                    policy, timeout=UPSTREAM_TIMEOUT, follow_redirects=True, limits=limits
                )
                self._clients[policy] = found
            return found

    def last_error(self, url: str) -> DomainError | None:
        with self._lock:
            for (known, _), token in self._tokens.items():
                entry = self._entries.get(token)
                if known == url and entry is not None and entry.error is not None:
                    return entry.error
        return None


RELAY = _Relay()


def relay_path(url: str, policy: SourcePolicy) -> str:
    """What GDAL opens for the http(s) source `url` (checked by `policy` on every request)."""
    return RELAY.register(url, policy)


def last_error(url: str) -> DomainError | None:
    """Why the relay last failed a request for `url` (None if it did not)."""
    return RELAY.last_error(url)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # the app logs requests; GDAL's range reads would flood the log

    def do_HEAD(self) -> None:
        self._relay("HEAD")

    def do_GET(self) -> None:
        self._relay("GET")

    def _answer(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _relay(self, method: str) -> None:
        token = self.path.lstrip("/").split("/", 1)[0]
        entry = RELAY.entry(token)
        if entry is None:
            self._answer(404)
            return
        headers = {"User-Agent": USER_AGENT}
        if self.headers.get("Range"):
            headers["Range"] = self.headers["Range"]
        try:
            status, passed, body, final = self._fetch(entry, method, headers)
        except SourceNotAllowed as exc:
            entry.error = exc
            self._answer(424)
            return
        except httpx.TimeoutException:
            entry.error = UpstreamTimeout(
                "The raster source did not answer in time", detail={"source": entry.url[:200]}
            )
            self._answer(424)
            return
        except (httpx.HTTPError, _TooLarge) as exc:
            entry.error = UpstreamError(
                "The raster source is unreachable",
                detail={"source": entry.url[:200], "reason": str(exc)[:200] or type(exc).__name__},
            )
            self._answer(424)
            return
        if status >= 400:
            entry.error = UpstreamError(
                f"The raster source answered HTTP {status}",
                detail={"source": entry.url[:200], "status": status},
            )
        else:
            entry.error = None
            if final != entry.target():
                entry.final, entry.final_at = final, time.monotonic()
        self._answer(status, body, passed)

    def _fetch(
        self, entry: _Entry, method: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes, str]:
        http = RELAY.client(entry.policy)
        with http.stream(method, entry.target(), headers=headers) as answer:
            body = bytearray()
            if method == "GET":
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise _TooLarge(f"answer larger than {MAX_BODY} bytes")
            passed = {k: answer.headers[k] for k in _PASSED_HEADERS if k in answer.headers}
            if method == "HEAD" and "content-length" in answer.headers:
                # GDAL learns the file size from HEAD: pass it on, with no body.
                passed["Content-Length"] = answer.headers["content-length"]
            return answer.status_code, passed, bytes(body), str(answer.url)


class _TooLarge(Exception):
    pass
