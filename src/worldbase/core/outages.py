"""Which exceptions mean "a part the API depends on is unavailable", and the 503 they become.

A lost database, Redis or object store is not a bug: the request is refused with
`503 Service Unavailable` and `Retry-After`, in the one error shape, naming the part and
nothing else, and the next request tries again (pools reconnect by themselves). Anything
not recognised here stays a 500.

Recognised, through the whole chain of causes (`raise ... from`, exception groups):
- database: SQLAlchemy's disconnect/operational/interface errors and pool timeouts,
  asyncpg's connection and operator-intervention errors (a restarting server);
- cache (Redis): redis-py's `ConnectionError` (incl. `BusyLoadingError`) and `TimeoutError`;
- storage (S3): botocore's connection and HTTP-client errors, and a server answering 503;
- a bare `ConnectionError`/`TimeoutError` (an OSError such as a refused connect) whose
  traceback runs through one of those client libraries is that library's part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import asyncpg
import botocore.exceptions
import redis.exceptions
import sqlalchemy.exc

from worldbase.core.errors import UNAVAILABLE_RETRY_AFTER_SECONDS, ServiceUnavailable

log = logging.getLogger("worldbase.outages")

DATABASE = "database"
CACHE = "cache"
STORAGE = "storage"
QUEUE = "job queue"

_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection free in time
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
)
_CACHE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
# What the clients that fail soft (cache, rate limits, event hub) catch as "Redis is down".
REDIS_DOWN: tuple[type[BaseException], ...] = (*_CACHE_ERRORS, OSError)
_STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
)
# Top-level package of a frame -> the part a network error raised under it belongs to.
_LIBRARY_PARTS = {
    "asyncpg": DATABASE,
    "sqlalchemy": DATABASE,
    "redis": CACHE,
    "huey": QUEUE,
    "botocore": STORAGE,
    "boto3": STORAGE,
    "urllib3": STORAGE,
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, its causes and contexts, and the members of exception groups (each once)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)


def _library_of(tb: TracebackType | None) -> str | None:
    """The part of the innermost known client library the traceback passes through."""
    part = None
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        part = _LIBRARY_PARTS.get(module.split(".", 1)[0], part)
        tb = tb.tb_next
    return part


def _part_of(exc: BaseException) -> str | None:
    if isinstance(exc, ServiceUnavailable):
        return None  # already a 503 of its own
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return DATABASE
    if isinstance(exc, _DATABASE_ERRORS):
        return DATABASE
    if isinstance(exc, _CACHE_ERRORS):
        return CACHE
    if isinstance(exc, _STORAGE_ERRORS):
        return STORAGE
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return STORAGE if status == 503 else None
    if isinstance(exc, ConnectionError | TimeoutError):
        return _library_of(exc.__traceback__)
    return None


def unavailable_part(exc: BaseException) -> str | None:
    """ "database", "cache", "storage" or "job queue" when `exc` says that part is
    unreachable (a lost connection, a refused connect, a timeout), else None."""
    for linked in _chain(exc):
        part = _part_of(linked)
        if part is not None:
            return part
    return None


def unavailable(part: str) -> ServiceUnavailable:
    """The 503 a request gets while `part` is unreachable (no internals in it)."""
    return ServiceUnavailable(
        f"{part.capitalize()} unavailable; retry shortly",
        detail={"unavailable": part, "retry_after": UNAVAILABLE_RETRY_AFTER_SECONDS},
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


class OutageLog:
    """Logs a part's outage once when it starts and once when it ends, not per request."""

    def __init__(self, part: str, *, logger: logging.Logger = log) -> None:
        self.part = part
        self.logger = logger
        self.down_since: float | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException, *extra: Any) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            self.logger.warning("%s unavailable (%s)%s", self.part, reason, "".join(extra))

    def recovered(self) -> None:
        if self.down_since is not None:
            seconds = time.monotonic() - self.down_since
            self.down_since = None
            self.logger.warning("%s available again after %.1fs", self.part, seconds)
