"""History rows of objects stored by the bulk paths, written when they are first needed.

The bulk paths of file imports (`bulk.store_nodes`, `osmium_tool.copy_nodes`) write new
nodes without history rows: a node that has not changed since its import has one version,
which its object row holds. Writing a second copy of every imported row (and building its
keys) cost as much as the import itself. So:
- `GET /objects/{id}/history` of an object without rows shows its `create` entry, built
  from the object (`create_entry`);
- the first change to such an object writes that `create` entry before the change's own
  row (`Ingestor`), so every later version is recorded as usual.
The entry's id is the object's own id, the same whether shown or written. Only nodes are
bulk-written; ways and relations always get their rows when stored.
"""

from __future__ import annotations

import builtins

import shapely
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.osm.models import OSMObject, OSMObjectHistory

CHUNK = 500  # ids per IN (...) lookup


def create_entry(obj: OSMObject) -> OSMObjectHistory:
    """The `create` history entry of an object, from its stored (first) version."""
    return OSMObjectHistory(
        id=obj.id,
        object_id=obj.id,
        action="create",
        version=obj.version,
        tags=obj.tags,
        geom_wkb=None if obj.geom is None else bytes(shapely.to_wkb(obj.geom)),
        timestamp=obj.timestamp,
        changeset=obj.changeset,
        user=obj.user,
        source_id=obj.source_id,
        recorded_at=obj.created_at,
    )


async def unrecorded(session: AsyncSession, object_ids: builtins.list[str]) -> set[str]:
    """The objects among `object_ids` that have no history row yet."""
    recorded: set[str] = set()
    for i in range(0, len(object_ids), CHUNK):
        part = object_ids[i : i + CHUNK]
        rows = await session.scalars(
            select(OSMObjectHistory.object_id)
            .where(OSMObjectHistory.object_id.in_(part))
            .distinct()
        )
        recorded.update(rows)
    return set(object_ids) - recorded
