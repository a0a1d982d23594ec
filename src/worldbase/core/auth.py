"""Identity (stub, being built)."""

from __future__ import annotations

from typing import Any

from worldbase.settings import Settings


async def ensure_admin(db: Any, settings: Settings) -> None:
    return None
