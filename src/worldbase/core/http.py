"""HTTP plumbing: request ids, JSON logs, body size limit, request metrics."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worldbase.core.errors import PayloadTooLarge, error_body
from worldbase.core.outages import unavailable, unavailable_part
from worldbase.core.redact import install_redaction

log = logging.getLogger("worldbase.http")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

REQUEST_LATENCY = Histogram(
    "worldbase_request_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REQUESTS_TOTAL = Counter(
    "worldbase_requests_total", "HTTP requests by route template", ["method", "route"]
)


# Set on an endpoint by `body_limit`; read from the matched route when its body is read.
BODY_LIMIT_ATTR = "__worldbase_max_body_bytes__"
EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])


def body_limit(limit: int) -> Callable[[EndpointT], EndpointT]:
    """Let requests to the decorated endpoint carry up to `limit` bytes (any path parameters).

    Put it under the route decorator. Routes without it get WORLDBASE_MAX_BODY_BYTES.
    """

    def declare(endpoint: EndpointT) -> EndpointT:
        setattr(endpoint, BODY_LIMIT_ATTR, limit)
        return endpoint

    return declare


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        if record.exc_text:  # the redaction filter leaves the cleaned traceback here
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Huey logs every periodic task at INFO; its warnings and errors are what matter here.
    logging.getLogger("huey").setLevel(max(logging.WARNING, root.level))
    install_redaction()


def _route_template(scope: Scope) -> str:
    # The router records the matched route in the scope; unmatched paths share one label
    # so that scanners cannot blow up the metric's cardinality.
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


class RequestContextMiddleware:
    """Adds `X-Request-ID` to every response, records latency, caps request bodies.

    A pure ASGI middleware (not BaseHTTPMiddleware) so streaming responses and WebSockets
    pass through untouched.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 128 else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = 1
                raw = list(message.get("headers", []))
                raw.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = raw
            await send(message)

        try:
            receive = self._capped_receive(scope, receive, headers.get(b"content-length"))
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Handled here rather than by Starlette's outermost error middleware so that the
            # 500 still carries X-Request-ID; the log line carries it too.
            part = unavailable_part(exc)
            if part is None:
                log.exception("unhandled error")
            else:  # a lost database/Redis/S3 is an outage, not a bug: 503 and retry
                log.warning("%s unavailable: %s", part, type(exc).__name__)
            if status_holder.get("started"):
                raise
            if part is None:
                code, reply_headers = 500, None
                body = error_body(500, "Internal server error", {"request_id": request_id})
            else:
                refusal = unavailable(part)
                code, reply_headers = refusal.status_code, refusal.headers
                body = error_body(code, refusal.message, refusal.detail)
            status_holder["status"] = code
            await self._send_json(send_with_id, code, body, reply_headers)
        finally:
            route = _route_template(scope)
            elapsed = time.perf_counter() - started
            REQUEST_LATENCY.labels(scope["method"], route, str(status_holder["status"])).observe(
                elapsed
            )
            REQUESTS_TOTAL.labels(scope["method"], route).inc()
            request_id_var.reset(token)

    def _limit_for(self, scope: Scope) -> int:
        default = int(scope.get("state", {}).get("max_body_bytes", self.max_body_bytes))
        return int(getattr(scope.get("endpoint"), BODY_LIMIT_ATTR, default))

    def _capped_receive(self, scope: Scope, receive: Receive, length: bytes | None) -> Receive:
        # The limit is looked up at the first read: routing has matched by then, so the
        # route's own declaration applies. A declared Content-Length over it is refused
        # before a byte is read; chunked bodies are counted as they arrive.
        received = 0
        limit: int | None = None

        def too_large(limit: int) -> PayloadTooLarge:
            return PayloadTooLarge(
                f"Request body is larger than {limit} bytes", detail={"limit": limit}
            )

        async def capped() -> Message:
            nonlocal received, limit
            if limit is None:
                limit = self._limit_for(scope)
                if length is not None and length.isdigit() and int(length) > limit:
                    raise too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        return capped

    @staticmethod
    async def _send_json(
        send: Send, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload).encode()
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
