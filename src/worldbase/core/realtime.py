"""Realtime hub (stub, being built)."""

from __future__ import annotations

from typing import Protocol

from worldbase.settings import Settings


class Hub(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class _Stub:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def create_hub(settings: Settings) -> Hub:
    return _Stub()
