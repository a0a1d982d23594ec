"""Jobs (stub, being built)."""

from __future__ import annotations

from typing import Any

from worldbase.settings import Settings


class JobRuntime:
    def __init__(self, settings: Settings, *, hub: Any, storage: Any):
        self.settings = settings

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
