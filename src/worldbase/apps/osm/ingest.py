"""The one ingestion service, whatever the channel (REST, WebSocket, files, polling).

Idempotent by (type, osm_id, version): a version already stored (or older) changes nothing,
so re-sending a batch or re-reading a diff is harmless. Elements without a version (plain
GeoJSON) get the next version when their content differs. Per-element accept/reject: an
invalid element goes to the validation log and the rest of the batch is stored; the
batch's writes (objects, history, log) commit together. An element whose geometry has more
than `max_vertices` positions (WORLDBASE_MAX_FEATURE_VERTICES; a relation assembled from
its ways included) is invalid, whatever the channel.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import polygonize, unary_union
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.osm.history import create_entry, unrecorded
from worldbase.apps.osm.models import (
    DataSource,
    OSMObject,
    OSMObjectHistory,
    ValidationLogEntry,
    new_id,
)
from worldbase.apps.osm.parsing import Element, Invalid, Rejected, check_positions, way_geometry
from worldbase.apps.osm.ways import reshape_ways
from worldbase.core.db import utcnow
from worldbase.geo.geometry import DEFAULT_MAX_FEATURE_VERTICES

log = logging.getLogger("worldbase.osm")

CHUNK = 500  # ids per IN (...) lookup


@dataclass
class IngestReport:
    received: int = 0
    created: int = 0
    modified: int = 0
    deleted: int = 0
    unchanged: int = 0
    filtered: int = 0
    rejected: int = 0
    reshaped: int = 0  # stored ways rebuilt because one of their nodes moved
    errors: builtins.list[dict[str, Any]] = field(default_factory=list)
    # (event type, object) of each change, for live updates after the commit.
    changes: builtins.list[tuple[str, OSMObject]] = field(default_factory=list, repr=False)

    @property
    def accepted(self) -> int:
        return self.created + self.modified + self.deleted + self.unchanged + self.filtered

    def summary(self) -> dict[str, Any]:
        # Not `asdict`: it would deep-copy every changed ORM object only to drop them.
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data.pop("changes")
        data["accepted"] = self.accepted
        data["errors"] = self.errors[:100]
        return data

    def add(self, other: IngestReport) -> None:
        names = ("received", "created", "modified", "deleted", "unchanged", "filtered", "reshaped")
        for name in names:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejected += other.rejected
        self.errors.extend(other.errors[: max(0, 100 - len(self.errors))])


def _chunks(items: builtins.list[Any]) -> Any:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


async def _load(
    session: AsyncSession, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], OSMObject]:
    found: dict[tuple[str, str], OSMObject] = {}
    for typ, ids in _by_type(keys):
        # type = ? AND osm_id IN (...): the unique (type, osm_id) index.
        rows = await session.scalars(
            select(OSMObject).where(OSMObject.type == typ, OSMObject.osm_id.in_(ids))
        )
        for obj in rows:
            found[(obj.type, obj.osm_id)] = obj
    return found


def _by_type(keys: set[tuple[str, str]]) -> Iterator[tuple[str, builtins.list[str]]]:
    """(type, chunk of osm_ids) for the (type, osm_id) keys."""
    types = sorted({typ for typ, _ in keys})
    for typ in types:
        for part in _chunks(sorted(osm_id for t, osm_id in keys if t == typ)):
            yield typ, part


def _matches_filter(element: Element, tag_filter: builtins.list[str] | None) -> bool:
    if not tag_filter:
        return True
    for wanted in tag_filter:
        key, sep, value = wanted.partition("=")
        if key in element.tags and (not sep or element.tags[key] == value):
            return True
    return False


def _relation_geometry(
    element: Element, geoms: dict[tuple[str, str], BaseGeometry | None]
) -> BaseGeometry | None:
    """Multipolygons and boundaries from their member ways (when all are known); else None."""
    if element.tags.get("type") not in ("multipolygon", "boundary") or not element.refs:
        return None
    outer: builtins.list[Any] = []
    inner: builtins.list[Any] = []
    for member in element.refs:
        if member["type"] != "way":
            continue
        geom = geoms.get(("way", str(member["ref"])))
        if geom is None:
            return None
        line = geom.exterior if geom.geom_type == "Polygon" else geom
        (inner if member.get("role") == "inner" else outer).append(line)
    polygons = list(polygonize(outer))
    if not polygons:
        return None
    result = unary_union(polygons)
    holes = list(polygonize(inner))
    if holes:
        result = result.difference(unary_union(holes))
    return None if result.is_empty else result


def _same(obj: OSMObject, element: Element) -> bool:
    if obj.deleted != element.deleted or obj.tags != element.tags:
        return False
    if (obj.geom is None) != (element.geom is None):
        return False
    return obj.geom is None or bool(shapely.equals_exact(obj.geom, element.geom, 0))


class Ingestor:
    """Stores one batch of elements; create one per batch."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        source: DataSource | None,
        channel: str,
        max_vertices: int = DEFAULT_MAX_FEATURE_VERTICES,
    ):
        self.session = session
        self.source = source
        self.channel = channel
        self.max_vertices = max_vertices
        self.report = IngestReport()
        self.moved: dict[str, Element] = {}  # nodes of this batch stored at a new position
        self.unrecorded: set[str] = set()  # stored objects whose create entry is not written

    def reject(self, item: Rejected) -> None:
        self.report.rejected += 1
        if len(self.report.errors) < 100:
            self.report.errors.append(
                {
                    "index": item.index,
                    "type": item.osm_type,
                    "id": item.osm_id,
                    "reason": item.reason,
                }
            )
        self.session.add(
            ValidationLogEntry(
                source_id=self.source.id if self.source else None,
                channel=self.channel,
                osm_type=item.osm_type,
                osm_id=item.osm_id,
                reason=item.reason[:2000],
                payload=item.payload,
                created_at=utcnow(),
            )
        )

    async def _resolve_geometries(self, elements: builtins.list[tuple[int, Element]]) -> None:
        """Way geometry from node locations, relation geometry from member ways: this batch
        first (its latest version), then the database. A way with unknown nodes is rejected."""
        in_batch: dict[tuple[str, str], BaseGeometry | None] = {}
        for _, element in elements:
            if element.geom is not None:
                in_batch[(element.type, element.osm_id)] = element.geom
        wanted: set[tuple[str, str]] = set()
        for _, element in elements:
            if element.geom is None and element.refs and not element.deleted:
                if element.type == "way":
                    wanted |= {("node", str(n)) for n in element.refs}
                elif element.type == "relation":
                    wanted |= {("way", str(m["ref"])) for m in element.refs if m["type"] == "way"}
        wanted -= in_batch.keys()
        if wanted:
            for wanted_type, ids in _by_type(wanted):
                rows = await self.session.execute(
                    select(OSMObject.type, OSMObject.osm_id, OSMObject.geom).where(
                        OSMObject.type == wanted_type,
                        OSMObject.osm_id.in_(ids),
                        OSMObject.deleted.is_(False),
                    )
                )
                for typ, osm_id, geom in rows:
                    in_batch.setdefault((typ, osm_id), geom)
        keep: builtins.list[tuple[int, Element]] = []
        for index, element in elements:
            if (
                element.type == "way"
                and element.geom is None
                and element.refs
                and not element.deleted
            ):
                try:  # before the nodes are looked up (the parsers check too; this is the net)
                    check_positions(len(element.refs), self.max_vertices, f"way {element.osm_id}")
                except Invalid as exc:
                    self.reject(_as_rejected(element, index, str(exc)))
                    continue
                missing = [n for n in element.refs if in_batch.get(("node", str(n))) is None]
                if missing:
                    reason = f"way {element.osm_id} refers to unknown nodes {missing[:10]}"
                    self.reject(_as_rejected(element, index, reason))
                    continue
                coords = [in_batch[("node", str(n))].coords[0] for n in element.refs]  # type: ignore[union-attr]
                try:
                    element.geom = way_geometry(coords, element.tags)
                except ValueError as exc:
                    self.reject(_as_rejected(element, index, str(exc)))
                    continue
                in_batch[("way", element.osm_id)] = element.geom
            keep.append((index, element))
        for _, element in keep:
            if element.type == "relation" and element.geom is None and not element.deleted:
                element.geom = _relation_geometry(element, in_batch)
        elements[:] = self._within_vertex_cap(keep)

    def _within_vertex_cap(
        self, elements: builtins.list[tuple[int, Element]]
    ) -> builtins.list[tuple[int, Element]]:
        """The elements whose geometry has at most `max_vertices` positions; the others
        are rejected naming the setting (files' ways and relations, assembled relations)."""
        keep: builtins.list[tuple[int, Element]] = []
        for index, element in elements:
            if element.geom is not None and element.type != "node":
                count = int(shapely.get_num_coordinates(element.geom))
                try:
                    check_positions(count, self.max_vertices, f"{element.type} {element.osm_id}")
                except Invalid as exc:
                    self.reject(_as_rejected(element, index, str(exc)))
                    continue
            keep.append((index, element))
        return keep

    def _in_area(self, element: Element) -> bool:
        area = self.source.area if self.source else None
        if not area or element.geom is None:
            return True
        region = _area_geometry(area)
        return region is None or bool(region.intersects(element.geom))

    async def run(
        self, elements: builtins.list[tuple[int, Element]], rejected: builtins.list[Rejected]
    ) -> IngestReport:
        self.report.received = len(elements) + len(rejected)
        for item in rejected:
            self.reject(item)
        elements = list(elements)
        await self._resolve_geometries(elements)
        tag_filter = self.source.tag_filter if self.source else None
        current = await _load(self.session, {(e.type, e.osm_id) for _, e in elements})
        self.unrecorded = await unrecorded(self.session, [obj.id for obj in current.values()])
        now = utcnow()
        for _, element in elements:
            if not element.deleted and (
                not _matches_filter(element, tag_filter) or not self._in_area(element)
            ):
                self.report.filtered += 1
                continue
            self._apply(element, current, now)
        batch_ways = {e.osm_id for _, e in elements if e.type == "way"}
        reshaped = await reshape_ways(
            self.session,
            moved=self.moved,
            skip=batch_ways,
            source_id=self.source.id if self.source else None,
            now=now,
        )
        for way in reshaped:
            self.report.reshaped += 1
            self.report.changes.append(("object.modified", way))
        if self.source is not None:
            self.source.last_ingest_at = now
        await self.session.flush()
        return self.report

    def _apply(self, element: Element, current: dict[tuple[str, str], OSMObject], now: Any) -> None:
        key = (element.type, element.osm_id)
        obj = current.get(key)
        if obj is not None and element.version is not None and element.version <= obj.version:
            self.report.unchanged += 1  # this version (or a newer one) is already stored
            return
        if obj is None and element.deleted:
            self.report.unchanged += 1  # nothing to delete
            return
        if obj is not None and element.version is None and _same(obj, element):
            self.report.unchanged += 1
            return
        version = element.version or ((obj.version + 1) if obj is not None else 1)
        if obj is None:
            obj = OSMObject(id=new_id(), type=element.type, osm_id=element.osm_id, created_at=now)
            self.session.add(obj)
            current[key] = obj
            action = "create"
        else:
            action = "delete" if element.deleted else "modify"
            if obj.id in self.unrecorded:  # bulk-stored: its first version goes to history now
                self.unrecorded.discard(obj.id)
                self.session.add(create_entry(obj))
        if (
            action == "modify"
            and element.type == "node"
            and not element.deleted
            and element.geom is not None
            and (obj.geom is None or not shapely.equals_exact(obj.geom, element.geom, 0))
        ):
            self.moved[element.osm_id] = element
        obj.version = version
        obj.deleted = element.deleted
        if not element.deleted:  # a delete keeps the last tags and geometry to look at
            obj.tags = element.tags
            obj.geom = element.geom
            obj.refs = element.refs
        obj.timestamp = element.timestamp
        obj.changeset = element.changeset
        obj.user = element.user
        obj.uid = element.uid
        obj.updated_at = now
        if self.source is not None:
            obj.source_id = self.source.id
        self.session.add(
            OSMObjectHistory(
                object_id=obj.id,
                action=action,
                version=version,
                tags={} if element.deleted else element.tags,
                geom_wkb=None
                if element.geom is None or element.deleted
                else bytes(shapely.to_wkb(element.geom)),
                timestamp=element.timestamp,
                changeset=element.changeset,
                user=element.user,
                source_id=self.source.id if self.source else None,
                recorded_at=now,
            )
        )
        kind = {"create": "created", "modify": "modified", "delete": "deleted"}[action]
        setattr(self.report, kind, getattr(self.report, kind) + 1)
        self.report.changes.append((f"object.{kind}", obj))


def _as_rejected(element: Element, index: int, reason: str) -> Rejected:
    payload = {"type": element.type, "id": element.osm_id, "refs": (element.refs or [])[:50]}
    return Rejected(reason, payload, element.type, element.osm_id, index)


_AREA_CACHE: dict[str, BaseGeometry] = {}


def _area_geometry(area: dict[str, Any]) -> BaseGeometry | None:
    key = repr(sorted(area.items()))
    geom = _AREA_CACHE.get(key)
    if geom is None:
        try:
            geom = shape(area)
        except (ValueError, TypeError, AttributeError):
            return None
        shapely.prepare(geom)
        if len(_AREA_CACHE) > 64:
            _AREA_CACHE.clear()
        _AREA_CACHE[key] = geom
    return geom


async def ingest(
    session: AsyncSession,
    *,
    elements: builtins.list[tuple[int, Element]],
    rejected: builtins.list[Rejected],
    source: DataSource | None,
    channel: str,
    max_vertices: int = DEFAULT_MAX_FEATURE_VERTICES,
) -> IngestReport:
    """Store a parsed batch and commit; retried once when a concurrent writer inserted one
    of the same objects first (the retry sees it and applies versions on top). Elements
    with more than `max_vertices` positions are rejected."""
    for attempt in (1, 2):
        ingestor = Ingestor(session, source=source, channel=channel, max_vertices=max_vertices)
        try:
            report = await ingestor.run(elements, rejected)
            await session.commit()
            return report
        except IntegrityError:
            await session.rollback()
            if attempt == 2:
                raise
            log.info("concurrent insert of the same objects; retrying the batch")
            if source is not None:
                source = await session.get(DataSource, source.id)
    raise AssertionError("unreachable")
