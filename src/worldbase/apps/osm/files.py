""".osm, .osm.pbf and .osc (osmChange) files through pyosmium, into the ingestion service.

Way geometry comes from the node locations in the file (pyosmium's location index), or,
for a diff whose ways refer to nodes it does not carry, from the stored nodes (a way whose
nodes are nowhere is rejected into the validation log). Multipolygon relations get their
geometry from pyosmium's area assembler (full files only). The whole file is read once
before anything is written, so a malformed file is rejected with nothing stored; then it
is stored in batches, each committed on its own (in create mode: all together). Full
imports publish no live events (a planet extract would flood subscribers); diffs do.
Ways and relations with more than WORLDBASE_MAX_FEATURE_VERTICES positions (the database's
settings) are rejected into the validation log, like any invalid element.

Speed: a full file into an empty objects table on PostgreSQL is imported in one
transaction with the indexes built at the end (`create.py`, like osm2pgsql's create mode);
with osmium-tool installed, its nodes go through `osmium export` straight into COPY
(`osmium_tool.py`) and the file is checked and counted by `osmium fileinfo`.
In full files, nodes are read as plain tuples and new ones written in bulk
(`bulk.store_nodes`: COPY / executemany, same idempotency); the file is read one batch
ahead in a thread while the database stores the previous batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import osmium
import shapely
from shapely.geometry import Point
from sqlalchemy.exc import IntegrityError

from worldbase.apps.osm import osmium_tool
from worldbase.apps.osm.bulk import (
    NodeRow,
    any_node_stored,
    any_object_stored,
    applies,
    as_elements,
    store_nodes,
)
from worldbase.apps.osm.create import NotEmpty, SessionFactory, create_mode, unavailable
from worldbase.apps.osm.ingest import IngestReport, ingest
from worldbase.apps.osm.models import DataSource
from worldbase.apps.osm.parsing import (
    Element,
    Invalid,
    Rejected,
    check_positions,
    coordinate,
    way_geometry,
)
from worldbase.core.db import Database, utcnow
from worldbase.core.errors import BadInput

log = logging.getLogger("worldbase.osm")

BATCH = 5000  # elements per `ingest` call
NODE_BATCH = 20_000  # node rows per bulk write
SUFFIXES = (".osm", ".osm.pbf", ".pbf", ".osc", ".osc.gz", ".osm.gz", ".osm.bz2", ".osc.bz2")
MEMBER_TYPES = {"n": "node", "w": "way", "r": "relation"}

Progress = Callable[[float, str], Awaitable[None]]
Publish = Callable[[IngestReport], None]


def file_suffix(name: str) -> str:
    lowered = name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            return suffix
    raise BadInput(f"Unsupported OSM file {name!r}: use one of {', '.join(SUFFIXES)}")


def is_change_file(name: str) -> bool:
    return ".osc" in file_suffix(name)


def _metadata(obj: Any, element: Element) -> None:
    element.version = obj.version or None  # 0: the file carries no versions
    element.tags = {tag.k: tag.v for tag in obj.tags}
    if obj.timestamp is not None and obj.timestamp.year > 1970:
        element.timestamp = obj.timestamp
    element.changeset = obj.changeset or None
    element.user = obj.user or None
    element.uid = obj.uid or None
    element.deleted = bool(obj.deleted) or not obj.visible


def _element(obj: Any, max_vertices: int) -> Element:
    if obj.is_node():
        element = Element(type="node", osm_id=str(obj.id))
        _metadata(obj, element)
        if not element.deleted:
            if not obj.location.valid():
                raise Invalid(f"node {obj.id} has no valid location")
            element.geom = Point(coordinate(obj.location.lon, obj.location.lat))
        return element
    if obj.is_way():
        element = Element(type="way", osm_id=str(obj.id))
        check_positions(len(obj.nodes), max_vertices, f"way {obj.id}")
        _metadata(obj, element)
        element.refs = [n.ref for n in obj.nodes]
        if not element.deleted and all(n.location.valid() for n in obj.nodes):
            coords = [(n.location.lon, n.location.lat) for n in obj.nodes]
            try:
                element.geom = way_geometry(coords, element.tags)
            except ValueError as exc:
                raise Invalid(f"way {obj.id}: {exc}") from None
        return element
    element = Element(type="relation", osm_id=str(obj.id))
    _metadata(obj, element)
    element.refs = [
        {"type": MEMBER_TYPES[m.type], "ref": m.ref, "role": m.role} for m in obj.members
    ]
    return element


def _processor(
    path: Path, *, locations: bool, areas: bool, nodes: bool = True
) -> osmium.FileProcessor:
    processor = osmium.FileProcessor(str(path))
    if locations:
        processor = processor.with_locations()
    if areas:
        processor = processor.with_areas()
    if not nodes:  # still read for the location index, but not handed to Python
        wanted = osmium.osm.WAY | osmium.osm.RELATION | osmium.osm.AREA
        processor = processor.with_filter(osmium.filter.EntityFilter(wanted))
    return processor


def count_elements(path: Path) -> int:
    """Reads the whole file once: a malformed one fails here, before anything is written."""
    try:
        return sum(1 for _ in osmium.FileProcessor(str(path)))
    except (RuntimeError, ValueError, OSError) as exc:
        raise BadInput(f"Malformed OSM file: {str(exc)[:300]}") from None


Batch = tuple[list[tuple[int, Element]], list[Rejected], list[tuple[int, NodeRow]]]


def _node_row(obj: Any) -> NodeRow | None:
    """A visible node with a valid location, as the bulk path takes it (cheap: no Element,
    no shapely); None sends it down the per-element path."""
    location = obj.location
    if not obj.visible or not location.valid():
        return None
    tags = obj.tags
    timestamp = obj.timestamp
    return (
        obj.id,
        obj.version or None,
        dict(tags) if len(tags) else {},
        location.lon,
        location.lat,
        timestamp if timestamp is not None and timestamp.year > 1970 else None,
        obj.changeset or None,
        obj.user or None,
        obj.uid or None,
    )


def iter_batches(
    path: Path, *, change: bool, max_vertices: int, with_nodes: bool = True
) -> Iterator[Batch]:
    """(elements, rejected, node rows) in file order; node rows only from full files (a
    diff's nodes are few and may modify or delete: they take the per-element path).
    `with_nodes=False`: ways and relations only (the nodes were stored by osmium-tool).
    Ways over `max_vertices` nodes are rejected before their geometry is built."""
    good: list[tuple[int, Element]] = []
    bad: list[Rejected] = []
    nodes: list[tuple[int, NodeRow]] = []
    relations: list[tuple[int, Element]] = []
    relation_geoms: dict[str, Any] = {}
    wkb = osmium.geom.WKBFactory()
    index = 0
    for entity in _processor(path, locations=True, areas=not change, nodes=with_nodes):
        obj: Any = entity
        if not change and obj.is_node():
            row = _node_row(obj)
            if row is not None:
                nodes.append((index, row))
                index += 1
                if len(nodes) >= NODE_BATCH:
                    yield good, bad, nodes
                    good, bad, nodes = [], [], []
                continue
        if obj.is_area():
            if not obj.from_way():
                try:
                    geom = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(obj)))
                    relation_geoms[str(obj.orig_id())] = geom
                except RuntimeError:
                    pass  # a broken multipolygon keeps no geometry
            continue
        try:
            element = _element(obj, max_vertices)
        except Invalid as exc:
            bad.append(
                Rejected(str(exc), {"type": obj.type_str(), "id": obj.id}, None, str(obj.id), index)
            )
        else:
            # Relations wait for their areas, which the assembler emits at the end.
            (relations if element.type == "relation" and not change else good).append(
                (index, element)
            )
        index += 1
        if len(good) + len(bad) >= BATCH:
            yield good, bad, nodes
            good, bad, nodes = [], [], []
    for i, relation in relations:
        relation.geom = relation_geoms.get(relation.osm_id)
        good.append((i, relation))
        if len(good) + len(bad) >= BATCH:
            yield good, bad, nodes
            good, bad, nodes = [], [], []
    if good or bad or nodes:
        yield good, bad, nodes


async def _store_batch(
    sessions: SessionFactory,
    batch: Batch,
    *,
    source_id: str | None,
    channel: str,
    lookup: bool,
    max_vertices: int,
) -> IngestReport:
    good, bad, nodes = batch
    async with sessions() as session:
        source = None
        if source_id is not None:
            source = await session.get(DataSource, source_id)
        fast = IngestReport()
        if nodes:
            try:
                fast, rest = await store_nodes(
                    session, nodes, source=source, now=utcnow(), lookup=lookup
                )
                await session.commit()
            except IntegrityError:  # a concurrent writer stored one of them first
                await session.rollback()
                fast, rest = IngestReport(), as_elements(nodes)
                if source is not None:
                    source = await session.get(DataSource, source_id)
            # Nodes come before the ways in a file: keep that order for `ingest`.
            good = rest + good
        report = await ingest(
            session,
            elements=good,
            rejected=bad,
            source=source,
            channel=channel,
            max_vertices=max_vertices,
        )
    report.add(fast)
    return report


async def import_file(
    db: Database,
    path: Path,
    *,
    source_id: str | None,
    name: str | None = None,
    progress: Progress | None = None,
    publish: Publish | None = None,
    channel: str = "file",
    create: bool = False,
) -> IngestReport:
    """Import a file. A full file into an empty objects table on PostgreSQL takes the
    first-load mode (`create.create_mode`: one transaction, indexes built at the end);
    `create=True` insists on it (`CreateModeUnavailable` when the table is not empty; on
    SQLite it is the usual path). Ways and relations over `db.settings`'
    WORLDBASE_MAX_FEATURE_VERTICES positions are rejected into the validation log."""
    name = name or path.name
    change = is_change_file(name)
    if create and change:
        raise BadInput("Create mode is for full files (.osm, .osm.pbf), not diffs (.osc)")
    max_vertices = db.settings.worldbase_max_feature_vertices
    info = await osmium_tool.file_info(path)  # None without osmium-tool
    total = max(info.total if info is not None else count_elements(path), 1)
    async with db.sessionmaker() as session:
        lookup = change or await any_node_stored(session)
        empty = not change and not db.is_sqlite and not await any_object_stored(session)
        source = await session.get(DataSource, source_id) if source_id is not None else None
    if create and not db.is_sqlite and not empty:
        raise unavailable(NotEmpty("osm_objects is not empty"))
    if empty:
        fast = info if osmium_tool.usable(name, info) and applies(source) else None
        try:
            try:
                async with create_mode(db) as sessions:
                    return await _import(
                        sessions, path, change=change, total=total, source_id=source_id,
                        progress=progress, publish=publish, channel=channel, lookup=False,
                        max_vertices=max_vertices,
                        fast=fast,
                    )  # fmt: skip
            except osmium_tool.NotPlain as exc:  # rolled back: the per-element path decides
                log.info("osmium-tool path not taken: %s", exc)
                async with create_mode(db) as sessions:
                    return await _import(
                        sessions, path, change=change, total=total, source_id=source_id,
                        progress=progress, publish=publish, channel=channel, lookup=False,
                        max_vertices=max_vertices,
                    )  # fmt: skip
        except NotEmpty as exc:  # another writer was first
            if create:
                raise unavailable(exc) from None
    return await _import(
        db.sessionmaker, path, change=change, total=total, source_id=source_id,
        progress=progress, publish=publish, channel=channel, lookup=lookup,
        max_vertices=max_vertices,
    )  # fmt: skip


async def _import(
    sessions: SessionFactory,
    path: Path,
    *,
    change: bool,
    total: int,
    source_id: str | None,
    progress: Progress | None,
    publish: Publish | None,
    channel: str,
    lookup: bool,
    max_vertices: int,
    fast: osmium_tool.FileInfo | None = None,
) -> IngestReport:
    report = IngestReport()
    done = 0
    if fast is not None:
        async with sessions() as session:
            now = utcnow()
            done = await osmium_tool.copy_nodes(
                session, path, info=fast, source_id=source_id, now=now
            )
            if source_id is not None and (source := await session.get(DataSource, source_id)):
                source.last_ingest_at = now
            await session.commit()
        report.received = report.created = done
        if progress is not None:
            await progress(min(done / total, 1.0), f"{done} of {total} elements")
        if fast.ways + fast.relations == 0:
            return report
    batches = iter_batches(path, change=change, max_vertices=max_vertices, with_nodes=fast is None)
    # The file is read one batch ahead, in a thread, while the database stores the last.
    ahead = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
    try:
        while (batch := await ahead) is not None:
            ahead = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
            stored = await _store_batch(
                sessions,
                batch,
                source_id=source_id,
                channel=channel,
                lookup=lookup,
                max_vertices=max_vertices,
            )
            report.add(stored)
            if publish is not None and change:
                publish(stored)
            done += len(batch[0]) + len(batch[1]) + len(batch[2])
            if progress is not None:
                await progress(min(done / total, 1.0), f"{done} of {total} elements")
    finally:
        if not ahead.done():
            with contextlib.suppress(Exception):
                await ahead  # never leave the reader thread running on a closed file
    return report
