"""Rate limits (stub, being built)."""

from __future__ import annotations

from typing import Protocol

from worldbase.settings import Settings


class RateLimiter(Protocol):
    async def reset(self) -> None: ...
    async def close(self) -> None: ...


class _Stub:
    async def reset(self) -> None:
        return None

    async def close(self) -> None:
        return None


def create_rate_limiter(settings: Settings) -> RateLimiter:
    return _Stub()
