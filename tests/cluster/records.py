"""The record of every request the harness makes: kind, target, start/end seconds since the
run began, status, Retry-After and error text, so each failure can be judged by the fault
window it fell in."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Record:
    kind: str
    method: str
    path: str
    via: str
    start: float
    end: float
    status: int  # 0: no HTTP answer (connection error or client timeout)
    retry_after: str | None = None
    error: str | None = None


class Recorder:
    """Makes requests and records each one; times are seconds since `t0`."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.records: list[Record] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def call(
        self,
        client: httpx.AsyncClient,
        kind: str,
        method: str,
        url: str,
        *,
        template: str | None = None,
        via: str = "proxy",
        **kwargs: Any,
    ) -> httpx.Response | None:
        start = self.now()
        response: httpx.Response | None = None
        status, retry_after, error = 0, None, None
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            status, retry_after = response.status_code, response.headers.get("retry-after")
            if status >= 400:
                error = response.text[:300]
        path = template or url
        self.records.append(
            Record(kind, method, path, via, start, self.now(), status, retry_after, error)
        )
        return response


def records_json(records: list[Record]) -> list[dict[str, Any]]:
    return [asdict(r) for r in records]
