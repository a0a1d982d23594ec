"""No credential reaches a log line: query tokens, headers, JWTs, data-source push tokens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from fastapi.testclient import TestClient

from tests.conftest import free_port, wait_for_port
from worldbase.core.redact import install_redaction, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsZWFrZWQtdXNlciJ9.c2lnbmF0dXJlLWxlYWtlZA"
SOURCE_TOKEN = "wbsrc_Zx9-leakedSourceToken_42"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("GET /api/maps/1/events?token=opaque-ws-token&x=1 HTTP/1.1", "opaque-ws-token"),
        ('"WebSocket /ws/c1?access_token=at-123456"', "at-123456"),
        ("/cog/info?url=s3://b/k.tif&api_key=ak-998877", "ak-998877"),
        ("/x?password=hunter2hunter2&page=2", "hunter2hunter2"),
        ("https://s3/x.tif?X-Amz-Credential=AKIAXX%2F1&X-Amz-Signature=deadbeef99", "deadbeef99"),
        ("https://s3/x.tif?X-Amz-Credential=AKIAXX1234&X-Amz-Signature=deadbeef99", "AKIAXX1234"),
        ("/hook?signature=v1abcdef123", "v1abcdef123"),
        (f"push from {SOURCE_TOKEN} refused", SOURCE_TOKEN[6:]),
        (f"token {JWT} expired", JWT),
        ("{'authorization': 'Bearer opaque-bearer-1', 'host': 'a'}", "opaque-bearer-1"),
        ("[(b'cookie', b'session=cookie-value-7'), (b'host', b'a')]", "cookie-value-7"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
        ("X-Api-Key: key-material-31337", "key-material-31337"),
        ("svix-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "g0hM9SsE"),
    ],
)
def test_redact_removes_credentials(line: str, secret: str) -> None:
    clean = redact(line)
    assert secret not in clean
    assert "[REDACTED]" in clean


def test_redact_keeps_ordinary_text() -> None:
    line = 'GET /api/layers?page=2&bbox=1,2,3,4 HTTP/1.1" 200; authorization failed for user 7'
    assert redact(line) == line


def test_log_records_are_redacted_for_every_handler(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_redaction()
    caplog.set_level(logging.DEBUG)
    # An earlier in-process uvicorn or app may have set their levels, or stopped propagation.
    for name in ("uvicorn.access", "uvicorn.error", "worldbase.osm", "worldbase.http"):
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
        caplog.set_level(logging.DEBUG, logger=name)
    access = logging.getLogger("uvicorn.access")
    access.info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        f"/api/maps/1/events?token={JWT}",
        "1.1",
        200,
    )
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:1", f"/ws/data-source/1?token={SOURCE_TOKEN}"
    )
    logging.getLogger("worldbase.osm").warning("push with %s refused", SOURCE_TOKEN)
    try:
        raise RuntimeError(f"upstream said no to https://h/x?api_key=sekret-api-key&token={JWT}")
    except RuntimeError:
        logging.getLogger("worldbase.http").exception("unhandled error")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "/api/maps/1/events?token=[REDACTED]" in text  # the line is there, the secret not
    assert JWT not in text and "sekret-api-key" not in text
    assert SOURCE_TOKEN not in text and "leakedSourceToken" not in text
    # uvicorn's access formatter unpacks the five args: the record keeps its shape.
    record = next(r for r in caplog.records if r.name == "uvicorn.access")
    assert isinstance(record.args, tuple) and len(record.args) == 5 and record.args[4] == 200


def test_unhandled_error_log_is_redacted(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The request middleware's own 500 log carries no credential from the failing request."""
    caplog.set_level(logging.INFO)
    response = client.get(f"/api/auth/me?token={JWT}", headers={"Authorization": f"Bearer {JWT}"})
    assert response.status_code == 401
    assert JWT not in caplog.text


# --- A real `worldbase serve`: uvicorn's access log on stderr -----------------------------------


def _serve_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORLDBASE_", "DATABASE_"))}
    env.update(
        WORLDBASE_DATA_DIR=str(data_dir),
        STORAGE_BACKEND="local",
        LOG_LEVEL="INFO",
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    env.pop("REDIS_URL", None)
    return env


@contextlib.contextmanager
def _serve(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from worldbase.cli import main; main()",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=_serve_env(tmp_path / "data"),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_for_port(port, timeout=90)
            except TimeoutError:
                raise AssertionError(log_path.read_text()[-3000:]) from None
            yield f"127.0.0.1:{port}", log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


async def _knock(url: str) -> None:
    with contextlib.suppress(Exception):
        async with websockets.connect(url, open_timeout=10) as ws:
            await asyncio.wait_for(ws.recv(), 2)


async def test_served_access_log_carries_no_token(tmp_path: Path) -> None:
    with _serve(tmp_path) as (host, log_path):
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as http:
            email = f"leak-{uuid.uuid4().hex[:8]}@example.com"
            registered = await http.post(
                "/api/auth/register",
                json={"email": email, "password": "correct horse battery", "name": "Leak"},
            )
            assert registered.status_code == 201, registered.text
            token = registered.json()["access_token"]
            me = await http.get(
                f"/api/auth/me?token={token}", headers={"Authorization": f"Bearer {token}"}
            )
            assert me.status_code == 200
            await http.get(f"/cog/info?url=s3://b/k.tif&X-Amz-Signature=feedface1234&token={JWT}")
            await http.post(
                f"/data-sources/{uuid.uuid4()}/ingest?token={SOURCE_TOKEN}",
                headers={"Authorization": f"Bearer {SOURCE_TOKEN}"},
                json={},
            )
        await _knock(f"ws://{host}/ws/client-1?token={token}")
        await _knock(f"ws://{host}/ws/data-source/{uuid.uuid4()}?token={SOURCE_TOKEN}")
        await _knock(f"ws://{host}/api/maps/{uuid.uuid4()}/events?token={token}")
        await asyncio.sleep(0.5)
    text = log_path.read_text()
    # The access lines are there (so the test can fail), with their credentials cut out.
    assert "/api/auth/me?token=[REDACTED]" in text, text[-3000:]
    assert "/ws/data-source/" in text and "WebSocket" in text, text[-3000:]
    for secret in (token, JWT, SOURCE_TOKEN, "leakedSourceToken", "feedface1234"):
        assert secret not in text, f"{secret!r} leaked into the log"
