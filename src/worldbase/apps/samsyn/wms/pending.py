"""A WMS layer saved while its WMS could not be reached: its capabilities are pending.

`source_config["capabilitiesPending"]` (set by the server only; whatever a client sends
for it is dropped) holds why and since when. The layer is served as configured, its layer
names unchecked and bounds/time range not filled in, and `LayerRead.warnings` says so
until the capabilities are read: when the layer's `source_config` is saved again, or when
it is read (`wms.recheck`, at most once a minute per layer).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

PENDING_KEY = "capabilitiesPending"


def strip(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != PENDING_KEY}


def mark(config: dict[str, Any], reason: str) -> dict[str, Any]:
    since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return strip(config) | {PENDING_KEY: {"reason": reason[:500], "since": since}}


def is_pending(config: dict[str, Any] | None) -> bool:
    return isinstance(config, dict) and PENDING_KEY in config


def reason(config: dict[str, Any] | None) -> str | None:
    """Why the capabilities are pending (None when they are not)."""
    value = config.get(PENDING_KEY) if isinstance(config, dict) else None
    return str(value.get("reason") or "unknown") if isinstance(value, dict) else None


def warnings(config: dict[str, Any] | None) -> list[str]:
    """What a client should know about a layer's configuration (empty when all is well)."""
    why = reason(config)
    if why is None:
        return []
    return [
        "The WMS's capabilities are not read yet (layer names unchecked, bounds and time "
        "range not filled in); they are read again when the layer is next read or saved. "
        f"Reason: {why}"
    ]
