"""Object storage (stub, being built)."""

from __future__ import annotations

from typing import Protocol

from worldbase.settings import Settings


class Storage(Protocol):
    async def close(self) -> None: ...


class _Stub:
    async def close(self) -> None:
        return None


def create_storage(settings: Settings) -> Storage:
    return _Stub()
