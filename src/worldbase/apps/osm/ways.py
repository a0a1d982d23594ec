"""Ways follow their nodes: when a node moves, every stored way that refers to it gets its
geometry rebuilt from its nodes' current positions (OSM itself does not bump the way's
version for that, so neither do we: the way keeps its version, gets a `modify` history row
with the new geometry, and subscribers get `object.modified`).

Ways are found by their node refs: a GIN index on `refs` (jsonb_path_ops, ways only) on
PostgreSQL; a `json_each` scan on SQLite (embedded data sets are small). Relations built
from a reshaped way are not rebuilt here (their members' geometry is read when the relation
itself changes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Integer, and_, bindparam, cast, false, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.osm.models import OSMObject, OSMObjectHistory
from worldbase.apps.osm.parsing import Element, Invalid, way_geometry

log = logging.getLogger("worldbase.osm")

CHUNK = 200  # node ids per look-up


async def ways_using(session: AsyncSession, node_ids: list[str]) -> list[OSMObject]:
    """The stored, not deleted ways whose refs hold any of `node_ids`."""
    found: dict[str, OSMObject] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(node_ids), CHUNK):
        part = [int(n) for n in node_ids[start : start + CHUNK]]
        if postgres:
            # One `refs @> '[n]'` per node: each is a GIN index scan, OR-ed into one bitmap.
            refs = cast(OSMObject.refs, JSONB)
            holds = or_(*(refs.op("@>")(literal([n], JSONB)) for n in part))
        else:
            each = func.json_each(OSMObject.refs).table_valued("value")
            wanted = func.json_each(bindparam("part", json.dumps(part))).table_valued("value")
            holds = (
                select(1)
                .select_from(each)
                .where(cast(each.c.value, Integer).in_(select(wanted.c.value)))
                .exists()
            )
        query = select(OSMObject).where(
            and_(OSMObject.type == "way", OSMObject.deleted == false(), holds)
        )
        for way in await session.scalars(query):
            found[way.id] = way
    return list(found.values())


async def _positions(
    session: AsyncSession, node_ids: Iterable[str], known: dict[str, BaseGeometry]
) -> dict[str, BaseGeometry]:
    positions = dict(known)
    missing = sorted(set(node_ids) - positions.keys())
    for start in range(0, len(missing), 500):
        rows = await session.execute(
            select(OSMObject.osm_id, OSMObject.geom).where(
                OSMObject.type == "node",
                OSMObject.osm_id.in_(missing[start : start + 500]),
                OSMObject.deleted == false(),
            )
        )
        for osm_id, geom in rows:
            if geom is not None:
                positions[osm_id] = geom
    return positions


async def reshape_ways(
    session: AsyncSession,
    *,
    moved: dict[str, Element],
    skip: set[str],
    source_id: str | None,
    now: Any,
) -> list[OSMObject]:
    """Rebuild the geometry of the ways using the `moved` nodes (osm_id -> the node as
    stored now), except the ways in `skip` (rebuilt by their own new version in this batch).
    Returns the ways changed; history rows are added to the session."""
    if not moved:
        return []
    ways = [w for w in await ways_using(session, sorted(moved)) if w.osm_id not in skip]
    if not ways:
        return []
    refs = {str(n) for way in ways for n in (way.refs or [])}
    known = {osm_id: e.geom for osm_id, e in moved.items() if e.geom is not None}
    positions = await _positions(session, refs, known)
    changed = []
    for way in ways:
        way_refs = [str(n) for n in (way.refs or [])]
        if any(n not in positions for n in way_refs):
            log.info("way %s keeps its geometry: some of its nodes are unknown", way.osm_id)
            continue
        try:
            geom = way_geometry([positions[n].coords[0] for n in way_refs], way.tags or {})
        except Invalid as exc:
            log.info("way %s keeps its geometry: %s", way.osm_id, exc)
            continue
        if way.geom is not None and shapely.equals_exact(way.geom, geom, 0):
            continue
        # The latest of its moved nodes says when and by whom the way's shape changed.
        cause = max(
            (moved[n] for n in way_refs if n in moved),
            key=lambda e: (e.timestamp is not None, e.timestamp or now),
        )
        way.geom = geom
        way.updated_at = now
        session.add(
            OSMObjectHistory(
                object_id=way.id,
                action="modify",
                version=way.version,
                tags=way.tags,
                geom_wkb=bytes(shapely.to_wkb(geom)),
                timestamp=cause.timestamp,
                changeset=cause.changeset,
                user=cause.user,
                source_id=source_id,
                recorded_at=now,
            )
        )
        changed.append(way)
    return changed
