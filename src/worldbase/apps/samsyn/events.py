"""Live map events: one hub channel per map, published after the change is committed.

Every event is `{"type": "<object>.<verb>", "map_id", "actor_id", "at", "data"}`; a change to
a layer (or its features, or a comment on it) is published on every map containing it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from worldbase.core import fast_lane
from worldbase.core.db import utcnow
from worldbase.core.models import User
from worldbase.core.realtime import Hub

log = logging.getLogger("worldbase.samsyn.events")


def map_channel(map_id: uuid.UUID) -> str:
    return f"samsyn:map:{map_id}"


# Changes after which a map's live sockets re-check their client's read access before
# passing the event on (a map turned private or deleted, a collaborator removed or changed).
ACCESS_EVENTS = frozenset(
    {"map.updated", "map.deleted", "collaborator.added", "collaborator.removed"}
)


LAYER_TILES_TAG = "samsyn:layer:"


def layer_tiles_tag(layer_id: uuid.UUID) -> str:
    """The fast-lane tag of a layer's public tiles (see `tiles_changed`)."""
    return f"{LAYER_TILES_TAG}{layer_id}"


async def tiles_changed(hub: Hub, layer_id: uuid.UUID) -> None:
    """After a committed change to a layer or its features: no worker answers its old tiles
    from the fast lane (the tile caches key on the config/revision and need nothing)."""
    await fast_lane.invalidate(hub, layer_tiles_tag(layer_id))


async def publish(
    hub: Hub,
    *,
    map_ids: Iterable[uuid.UUID],
    type_: str,
    actor: User | None,
    data: dict[str, Any],
) -> None:
    """Best effort: the change is committed already, a hub outage must not turn it into a 500."""
    at = utcnow().isoformat()
    for map_id in dict.fromkeys(map_ids):
        event = {
            "type": type_,
            "map_id": str(map_id),
            "actor_id": str(actor.id) if actor is not None else None,
            "at": at,
            "data": data,
        }
        try:
            await hub.publish(map_channel(map_id), event)
        except Exception:
            log.warning("could not publish %s on map %s", type_, map_id, exc_info=True)
