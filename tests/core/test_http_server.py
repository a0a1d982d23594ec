"""Request heads past WORLDBASE_MAX_HEADER_BYTES get a 431 from the HTTP server itself."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import free_port, wait_for_port
from worldbase.core.http_server import CappedH11Protocol, CappedHttpToolsProtocol

LIMIT = 64 * 1024
SERVE = "from worldbase.cli import app; app()"  # `worldbase serve`, on this interpreter


def _send_head(port: int, head: bytes, *, chunk: int = 64 * 1024) -> tuple[bytes, float]:
    """Send a request head in chunks (stopping when the server hangs up); the answer and
    how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(OSError):  # the server closes while we still send
            for start in range(0, len(head), chunk):
                sock.sendall(head[start : start + chunk])
        answer = b""
        with contextlib.suppress(OSError):
            while part := sock.recv(65536):
                answer += part
    return answer, time.monotonic() - started


def _huge_header(size: int) -> bytes:
    return b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"


def _many_headers(total: int) -> bytes:
    """A head of about `total` bytes made of 110-byte header lines."""
    lines = b"".join(b"X-H%05d: %s\r\n" % (n, b"b" * 99) for n in range(total // 110))
    return b"GET /health HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n"


def _assert_431(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431"), answer[:200]
    error = json.loads(body)
    assert error["status"] == "error" and error["code"] == 431
    assert "WORLDBASE_MAX_HEADER_BYTES" in error["message"]


# --- Both protocol classes, each in a real uvicorn ------------------------------------------


async def _tiny_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(params=[CappedHttpToolsProtocol, CappedH11Protocol], ids=["httptools", "h11"])
def tiny_server(request: pytest.FixtureRequest) -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        _tiny_app,
        host="127.0.0.1",
        port=port,
        http=request.param,
        h11_max_incomplete_event_size=LIMIT,
        log_config=None,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    yield port
    server.should_exit = True
    thread.join(10)


@pytest.mark.parametrize(
    "head",
    [_huge_header(8 * 1024 * 1024), _many_headers(200 * 1024), _many_headers(LIMIT + 2048)],
    ids=["one-8MB-header", "many-headers", "just-over"],
)
def test_oversized_heads_get_431(tiny_server: int, head: bytes) -> None:
    answer, seconds = _send_head(tiny_server, head)
    _assert_431(answer)
    assert seconds < 2


def test_head_under_the_cap_is_served(tiny_server: int) -> None:
    for head in (_huge_header(LIMIT - 1024), _many_headers(LIMIT - 1024)):
        answer, _ = _send_head(tiny_server, head)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_keep_alive_requests_each_get_their_own_budget(tiny_server: int) -> None:
    # Many small requests on one connection add up to more than the cap: all served.
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 4000 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", tiny_server), timeout=10) as sock:
        for _ in range(40):
            sock.sendall(request)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_large_bodies_are_not_counted_as_heads(tiny_server: int) -> None:
    # A body's last read (here 1 MiB sent at once) ends one message; it is no head.
    body = b"x" * (1024 * 1024 + 17)
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection(("127.0.0.1", tiny_server), timeout=10) as sock:
        for _ in range(3):
            sock.sendall(request + body)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


# --- `worldbase serve` itself ----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORLDBASE_", "DATABASE_"))}
    env.update(
        WORLDBASE_ENV="test",
        WORLDBASE_DATA_DIR=str(tmp / "data"),
        WORLDBASE_APPS="",
        WORLDBASE_PERIODIC_JOBS="false",
        JWT_SECRET="header-test-" + "s" * 40,
        LOG_JSON="false",
    )
    env.pop("REDIS_URL", None)
    log = (tmp / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--port", str(port)],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_for_port(port, timeout=90)
        except TimeoutError:
            raise AssertionError((tmp / "serve.log").read_text()[-3000:]) from None
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_serve_answers_a_64mb_header_with_431_quickly(served: int) -> None:
    answer, seconds = _send_head(served, _huge_header(64 * 1024 * 1024), chunk=1024 * 1024)
    _assert_431(answer)
    assert seconds < 2


def test_health_stays_fast_while_huge_heads_arrive(served: int) -> None:
    stop = threading.Event()
    head = _huge_header(64 * 1024 * 1024)

    def attack() -> None:
        while not stop.is_set():
            _send_head(served, head, chunk=1024 * 1024)

    attackers = [threading.Thread(target=attack, daemon=True) for _ in range(4)]
    for thread in attackers:
        thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{served}", timeout=10) as http:
            http.get("/health")
            timings = []
            for _ in range(20):
                started = time.monotonic()
                assert http.get("/health").status_code == 200
                timings.append(time.monotonic() - started)
    finally:
        stop.set()
        for thread in attackers:
            thread.join(10)
    assert max(timings) < 1.0, timings


def test_serve_takes_ordinary_large_heads(served: int) -> None:
    cookie = "c=" + "v" * 30000  # a fat cookie is well under the 64 KiB default
    response = httpx.get(f"http://127.0.0.1:{served}/health", headers={"Cookie": cookie})
    assert response.status_code == 200


def test_setting_default_is_64_kib() -> None:
    from worldbase.settings import Settings

    settings = Settings(_env_file=None, worldbase_max_header_bytes=8192)  # type: ignore[call-arg]
    assert settings.worldbase_max_header_bytes == 8192
    assert Settings(_env_file=None).worldbase_max_header_bytes == LIMIT  # type: ignore[call-arg]
