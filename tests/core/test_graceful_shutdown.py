"""`worldbase serve` on SIGTERM: WebSockets closed with 1012 (service restart) so clients
reconnect elsewhere, a request in flight answered in full, the process gone within the
shutdown timeout. A real server process (embedded mode)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
SHUTDOWN_SECONDS = 5


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DATABASE_", "REDIS_", "STORAGE_", "WORLDBASE_"))
    }
    env |= {
        "PYTHONPATH": str(ROOT / "src"),
        "WORLDBASE_ENV": "test",
        "WORLDBASE_DATA_DIR": str(tmp_path / "data"),
        "JWT_SECRET": "shutdown-test-secret-" + "x" * 32,
        "WORLDBASE_SHUTDOWN_TIMEOUT": str(SHUTDOWN_SECONDS),
        "WORLDBASE_PERIODIC_JOBS": "false",
        "LOG_JSON": "false",
    }
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "worldbase"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=60)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        log.close()


def test_sigterm_closes_sockets_with_1012_and_finishes_requests(
    server: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = server
    with connect(f"ws://127.0.0.1:{port}/ws/shutdown-test", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
        _stop_while_busy(proc, port, ws)


def _stop_while_busy(proc: subprocess.Popen[bytes], port: int, ws: Any) -> None:
    # A request in flight: its head and half its body sent when the signal comes.
    body = json.dumps({"email": "nobody@example.org", "password": "not-the-password"}).encode()
    http = socket.create_connection(("127.0.0.1", port), timeout=10)
    http.sendall(
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )
    time.sleep(0.3)

    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=SHUTDOWN_SECONDS)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012

    time.sleep(0.3)
    http.sendall(body[10:])
    answer = b""
    while chunk := http.recv(65536):
        answer += chunk
    http.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), answer[:300]
    assert b"connection: close" in head.lower()
    assert json.loads(payload)["status"] == "error"

    # uvicorn re-raises the signal once it has shut down: killed by SIGTERM, cleanly.
    assert proc.wait(timeout=SHUTDOWN_SECONDS + 5) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < SHUTDOWN_SECONDS + 3
