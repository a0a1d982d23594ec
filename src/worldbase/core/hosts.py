"""Trusted hosts (seed 003's ALLOWED_HOSTS): Starlette's TrustedHostMiddleware decides,
Worldbase answers a refused Host header in its own error shape (400).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worldbase.core.errors import error_response

_ACCEPTED = "worldbase.trusted_host"


async def _accept(scope: Scope, receive: Receive, send: Send) -> None:
    scope[_ACCEPTED] = True


async def _discard(message: Message) -> None:
    return None


async def _nothing() -> Message:  # pragma: no cover - the checker's answers read no body
    return {"type": "http.disconnect"}


class TrustedHostsMiddleware:
    """Only requests (and WebSockets) whose Host matches `allowed_hosts` reach the app.

    Patterns as Starlette's: `example.com`, `*.example.com`, `*` for any; no www redirect.
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.checker = TrustedHostMiddleware(
            _accept, allowed_hosts=list(allowed_hosts), www_redirect=False
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        probe = dict(scope)
        await self.checker(probe, _nothing, _discard)
        if probe.get(_ACCEPTED):
            await self.app(scope, receive, send)
            return
        response = error_response(400, "Invalid host header", detail={"setting": "ALLOWED_HOSTS"})
        await response(scope, receive, send)
