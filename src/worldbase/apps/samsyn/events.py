"""Live map events: one hub channel per map, published after the change is committed.

Every event is `{"type": "<object>.<verb>", "map_id", "actor_id", "at", "data"}`; a change to
a layer (or its features, or a comment on it) is published on every map containing it.

A writer describes what it committed as a `Change` (services return one) and hands it to
`after_commit`, the one place that drops the tiles the change made stale (stored tiles, the
fast lane of every worker) and publishes its event.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from worldbase.apps.samsyn.models import SourceType
from worldbase.apps.samsyn.raster import service as service_raster
from worldbase.apps.samsyn.wms import service as service_wms
from worldbase.core import fast_lane
from worldbase.core.cache import Cache
from worldbase.core.db import utcnow
from worldbase.core.models import User
from worldbase.core.realtime import Hub
from worldbase.core.storage import Storage

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
    """The fast-lane tag of a layer's public tiles (invalidated by `after_commit`)."""
    return f"{LAYER_TILES_TAG}{layer_id}"


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


@dataclass(frozen=True)
class Change:
    """A committed change: its event (`type`, `data`) for the maps that show it, and the
    layer whose tiles it made stale, if any."""

    type: str
    data: dict[str, Any]
    map_ids: Sequence[uuid.UUID]
    layer_id: uuid.UUID | None = None  # its tiles changed: no fast lane answers the old ones
    # Stored tiles to drop (a GeoTIFF's new config, a deleted WMS or GeoTIFF layer): new keys
    # never read them, this frees their space.
    drop_stored: SourceType | None = None


class ChangeServices(Protocol):
    """What `after_commit` needs of the running app (`core.services.Services` has it)."""

    hub: Hub
    cache: Cache
    storage: Storage


_STORED_TILES = {
    SourceType.geotiff: service_raster.forget_tiles,
    SourceType.wms: service_wms.forget_tiles,
}


async def after_commit(services: ChangeServices, change: Change, *, actor: User | None) -> None:
    """Everything a committed change implies besides itself: stale tiles dropped, every
    worker's fast lane told, the event published. Call it once the change is committed."""
    if change.layer_id is not None:
        forget_tiles = _STORED_TILES.get(change.drop_stored) if change.drop_stored else None
        if forget_tiles is not None:
            await forget_tiles(
                layer_id=change.layer_id, cache=services.cache, storage=services.storage
            )
        await fast_lane.invalidate(services.hub, layer_tiles_tag(change.layer_id))
    await publish(
        services.hub, map_ids=change.map_ids, type_=change.type, actor=actor, data=change.data
    )
