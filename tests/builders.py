"""Object builders shared by the tests: users and their bearer tokens, through the real API."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastapi.testclient import TestClient

DEFAULT_PASSWORD = "correct horse battery"


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: Any, code: int) -> dict[str, Any]:
    """Asserts the status and the error shape; returns the body."""
    assert response.status_code == code, response.text
    body = response.json()
    assert body["status"] == "error", body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert "detail" in body, body
    return body


def run_db(client: TestClient, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """`await fn(session, **kwargs)` on the app's loop, with a session of the app's database."""

    async def call() -> Any:
        sessionmaker = client.app.state.services.db.sessionmaker  # type: ignore[attr-defined]
        async with sessionmaker() as session:
            return await fn(session, **kwargs)

    return client.portal.call(call)  # type: ignore[union-attr]


def register_user(
    client: TestClient,
    email: str | None = None,
    *,
    admin: bool = False,
    password: str = DEFAULT_PASSWORD,
    name: str | None = None,
) -> tuple[dict[str, Any], str]:
    """A new user and its bearer token. Admins are made by the service (the API cannot make
    one) and then log in through the API like anyone else."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.org"
    if not admin:
        body: dict[str, Any] = {"email": email, "password": password}
        if name is not None:
            body["name"] = name
        response = client.post("/api/auth/register", json=body)
        assert response.status_code == 201, response.text
        data = response.json()
        return data["user"], data["access_token"]

    from worldbase.core import users

    run_db(client, users.create, email=email, password=password, is_admin=True, name=name)
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    data = response.json()
    return data["user"], data["access_token"]


def close_code_within(ws: Any, seconds: float = 1.0, *, seen: Any = None) -> int:
    """The close code a Starlette test WebSocket receives within `seconds`; fails if an
    event (other than a ping, or one equal to `seen`: already visible before the change)
    comes first or nothing comes in time."""
    import json
    import time

    import anyio

    deadline = time.monotonic() + seconds

    async def receive() -> Any:
        with anyio.fail_after(max(0.0, deadline - time.monotonic())):
            return await ws._send_rx.receive()  # the test session's own queue, with a timeout

    while True:
        message = ws.portal.call(receive)
        if message["type"] == "websocket.close":
            return int(message.get("code", 1000))
        event = json.loads(message["text"])
        assert event.get("type") == "ping" or (seen is not None and event == seen), (
            f"received {event} instead of the close"
        )


@contextmanager
def jwks_server(jwks: dict[str, Any]) -> Iterator[str]:
    """`jwks` served on loopback as an identity provider (Clerk) publishes it; its URL."""
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
