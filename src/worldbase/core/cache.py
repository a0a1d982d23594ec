"""Cache (stub, being built)."""

from __future__ import annotations

from typing import Protocol

from worldbase.settings import Settings


class Cache(Protocol):
    async def clear(self) -> None: ...
    async def close(self) -> None: ...


class _Stub:
    async def clear(self) -> None:
        return None

    async def close(self) -> None:
        return None


def create_cache(settings: Settings) -> Cache:
    return _Stub()
