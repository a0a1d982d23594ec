"""Body limits are declared on the route (paths with ids included) and enforced while streaming.

Issue 18 item 18: `POST /api/layers/import` answered 413 at ~10 MiB although files up to
100 MiB are promised, and `.osm.pbf` uploads to `/data-sources/{id}/import` hit the same
wall. These tests stream real bodies to a real server (uvicorn on loopback): 50 MiB goes
through both, and over a route's limit the answer is 413 in the error shape before the body
has been read whole.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from tests.builders import auth_headers, register_user
from tests.conftest import free_port, wait_for_port
from worldbase.app import create_app
from worldbase.apps.osm.router import MAX_IMPORT_BYTES as OSM_LIMIT
from worldbase.apps.samsyn.imports.router import BODY_LIMIT as LAYER_IMPORT_LIMIT
from worldbase.settings import Settings

MiB = 1024 * 1024
BOUNDARY = "worldbase-test-boundary"


@pytest.fixture
def server(client: TestClient, settings: Settings) -> Iterator[str]:
    """The app on uvicorn (same settings and database as `client`), in a thread."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    wait_for_port(port, timeout=60)
    yield f"127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=30)


def _multipart(filename: str, chunks: Iterator[bytes], **fields: str) -> Iterator[bytes]:
    for name, value in fields.items():
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield from chunks
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _padded_geojson(size: int) -> Iterator[bytes]:
    """A valid GeoJSON file of `size` bytes: one point, then insignificant whitespace."""
    head = json.dumps(
        {
            "type": "Feature",
            "properties": {"name": "a"},
            "geometry": {"type": "Point", "coordinates": [1, 2]},
        }
    ).encode()
    yield b'{"type": "FeatureCollection", "features": [' + head
    tail = b"]}"
    left = size - len(head) - len(tail) - len(b'{"type": "FeatureCollection", "features": [')
    while left > 0:
        n = min(left, MiB)
        yield b" " * n
        left -= n
    yield tail


def _junk(size: int) -> Iterator[bytes]:
    for _ in range(size // MiB):
        yield b"\x00" * MiB


def _wait_job(base: str, job_id: str, headers: dict[str, str], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"http://{base}/api/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


def test_50_mib_vector_import_is_accepted_as_a_job(client: TestClient, server: str) -> None:
    _, token = register_user(client)
    headers = {**auth_headers(token), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    # A generator body: sent chunked, never held whole by the client.
    body = _multipart("big.geojson", _padded_geojson(50 * MiB), name="Big import")
    response = httpx.post(
        f"http://{server}/api/layers/import", content=body, headers=headers, timeout=120
    )
    assert response.status_code == 202, response.text
    job = _wait_job(server, response.json()["job_id"], auth_headers(token))
    assert job["status"] == "succeeded", job


def test_50_mib_osm_pbf_upload_to_a_path_with_an_id_is_accepted(
    client: TestClient, server: str
) -> None:
    _, token = register_user(client, admin=True)
    source = client.post(
        "/data-sources", json={"name": "big", "type": "rest"}, headers=auth_headers(token)
    )
    assert source.status_code == 201, source.text
    headers = {**auth_headers(token), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    body = _multipart("region.osm.pbf", _junk(50 * MiB))
    response = httpx.post(
        f"http://{server}/data-sources/{source.json()['id']}/import",
        content=body,
        headers=headers,
        timeout=120,
    )
    # Accepted: the file's content (here not a PBF) is the job's business, its size is not.
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("queued", "running", "failed")


def _request_head(path: str, token: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{extra}\r\n"
    ).encode()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body[: _length(data)])


def _length(data: bytes) -> int:
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 0


def _assert_413(status: int, body: dict[str, Any], limit: int) -> None:
    assert status == 413, body
    assert body["status"] == "error" and body["code"] == 413, body
    assert body["detail"] == {"limit": limit}, body


@pytest.mark.parametrize("route", ["layers", "osm"])
def test_a_declared_length_over_the_route_limit_is_413_before_the_body_is_read(
    client: TestClient, server: str, route: str
) -> None:
    _, token = register_user(client, admin=True)
    if route == "osm":
        source = client.post(
            "/data-sources", json={"name": "s", "type": "rest"}, headers=auth_headers(token)
        ).json()
        path, limit = f"/data-sources/{source['id']}/import", OSM_LIMIT
    else:
        path, limit = "/api/layers/import", LAYER_IMPORT_LIMIT
    host, port = server.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        # Announces one byte over the limit, sends 64 KiB of it: the answer cannot wait
        # for the rest.
        sock.sendall(_request_head(path, token, f"Content-Length: {limit + 1}\r\n"))
        sock.sendall(b"\x00" * 65536)
        status, body = _read_response(sock)
    _assert_413(status, body, limit)


def test_a_chunked_body_over_the_limit_is_cut_off_at_the_limit(
    client: TestClient, server: str
) -> None:
    _, token = register_user(client)
    host, port = server.split(":")
    limit = LAYER_IMPORT_LIMIT
    part = next(_multipart("big.geojson", iter(())))
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(_request_head("/api/layers/import", token, "Transfer-Encoding: chunked\r\n"))
        sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        chunk = b"%x\r\n%s\r\n" % (MiB, b" " * MiB)
        answered = False
        # Up to three times the limit; the server must answer long before that.
        while sent < 3 * limit:
            if select.select([sock], [], [], 0)[0]:
                answered = True
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                answered = True
                break
            sent += MiB
        assert answered, "the server read three times the limit without answering"
        status, body = _read_response(sock)
    _assert_413(status, body, limit)
    # What the socket buffers held on top of the limit, no more.
    assert sent < limit + 32 * MiB
