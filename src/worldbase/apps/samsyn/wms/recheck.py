"""Reading the capabilities of a WMS layer saved while its WMS could not be reached
(`wms.pending`), when the layer is read: at most once per `RETRY_SECONDS` per layer (a
cache key marks the attempt), so a WMS that is still down costs one request a minute."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.events import after_commit
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.models import Layer, SourceType
from worldbase.apps.samsyn.wms import pending
from worldbase.apps.samsyn.wms import service as service_wms
from worldbase.core.errors import BadInput, DomainError
from worldbase.core.services import Services

RETRY_SECONDS = 60


async def read(session: AsyncSession, *, layer: Layer, services: Services) -> dict[str, Any]:
    """The layer as read, its capabilities read first if they are pending and due."""
    config = layer.source_config
    if layer.source_type != SourceType.wms or not pending.is_pending(config):
        return service_layers.layer_read(layer)
    key = f"samsyn-wms-recheck:{layer.id}"
    if await services.cache.get(key) is not None:
        return service_layers.layer_read(layer)
    await services.cache.set(key, b"1", ttl=RETRY_SECONDS)
    try:
        completed = await service_wms.complete_config(config, settings=services.settings)
    except BadInput as exc:  # the WMS answers now, but without the layer's names
        completed = pending.mark(config, exc.message)
    except DomainError:  # e.g. a source policy that now refuses the URL: tiles will say so
        return service_layers.layer_read(layer)
    if pending.is_pending(completed) and pending.reason(completed) == pending.reason(config):
        return service_layers.layer_read(layer)  # still down: nothing to save
    change = await service_layers.update(session, layer=layer, values={"source_config": completed})
    await after_commit(services, change, actor=None)
    return change.data
