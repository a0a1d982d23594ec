"""Objects written one at a time (`POST /objects`, `PUT/PATCH/DELETE /objects/{id}`).

Each write is a one-element batch from the object's data source through the one ingestion
path (`ingest.ingest`): a new version and its history row, the source's area and tag
filter, a rejected element in the validation log (channel `rest`), and the changes for the
live events (the caller publishes them after the commit). Writes carry no version: a write
that changes nothing makes no version, as for versionless GeoJSON pushes.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.osm.exceptions import SourceInactive
from worldbase.apps.osm.ingest import IngestReport, ingest
from worldbase.apps.osm.models import DataSource, OSMObject
from worldbase.apps.osm.parsing import (
    Element,
    Invalid,
    Rejected,
    element_geometry,
    geometry_input,
    osm_id_of,
    osm_type,
    tags_of,
    truncate_payload,
)
from worldbase.core.errors import BadInput, Conflict
from worldbase.core.offload import run_sized
from worldbase.geo.geometry import DEFAULT_MAX_FEATURE_VERTICES

CHANNEL = "rest"
LIMIT_NAME = "WORLDBASE_MAX_FEATURE_VERTICES"


def parse_geometry(typ: str, value: Any, max_vertices: int) -> BaseGeometry:
    """`geom` as sent (WKT, GeoJSON text or object), validated for an element of `typ`.
    Module-level and pure: a large one is parsed in a worker process (`run_sized`)."""
    return element_geometry(
        typ, geometry_input(value), max_vertices=max_vertices, limit_name=LIMIT_NAME
    )


async def _geometry(typ: str, value: Any, max_vertices: int) -> BaseGeometry:
    # A dict was decoded with the body already; WKT or GeoJSON text is parsed here.
    size = len(value) if isinstance(value, str) else 0
    return await run_sized(size, parse_geometry, typ, value, max_vertices)


def _reason(exc: Exception) -> str:
    if isinstance(exc, BadInput):
        detail = exc.detail if isinstance(exc.detail, dict) else {}
        if detail.get("reason"):
            path = detail.get("path")
            return f"'geom': {detail['reason']}" + (f" at {path}" if path else "")
        return exc.message
    return str(exc)


async def _reject(
    session: AsyncSession,
    *,
    source: DataSource | None,
    exc: Exception,
    field: str,
    typ: str | None,
    osm_id: str | None,
    payload: dict[str, Any],
) -> BadInput:
    """Logs the refused write like any rejected element; the 422 to raise."""
    reason = _reason(exc)
    rejected = Rejected(reason, truncate_payload(payload), typ, osm_id)
    await ingest(session, elements=[], rejected=[rejected], source=source, channel=CHANNEL)
    return BadInput(
        f"Invalid object: {reason}",
        detail=[{"loc": ["body", field], "msg": reason, "type": "value_error"}],
    )


async def _store(
    session: AsyncSession, *, source: DataSource | None, element: Element
) -> IngestReport:
    if source is not None and not source.is_active:
        raise SourceInactive("Data source is inactive")
    report = await ingest(
        session, elements=[(0, element)], rejected=[], source=source, channel=CHANNEL
    )
    if report.rejected:
        reason = str(report.errors[0]["reason"]) if report.errors else "rejected"
        raise BadInput(f"Invalid object: {reason}", detail={"reason": reason})
    if report.filtered:
        raise BadInput(
            "The object is outside the data source's area or tag filter",
            detail={"source_id": source.id if source else None},
        )
    return report


async def _existing(session: AsyncSession, *, typ: str, osm_id: str) -> OSMObject | None:
    found: OSMObject | None = await session.scalar(
        select(OSMObject).where(OSMObject.type == typ, OSMObject.osm_id == osm_id)
    )
    return found


def _changed(report: IngestReport, default: OSMObject) -> OSMObject:
    return report.changes[0][1] if report.changes else default


async def create_object(
    session: AsyncSession,
    *,
    source: DataSource,
    values: dict[str, Any],
    max_vertices: int = DEFAULT_MAX_FEATURE_VERTICES,
) -> tuple[OSMObject, IngestReport]:
    """A new object (or a new version of a deleted one) from the source; Conflict when the
    (type, osm_id) is tracked and not deleted. A geometry past `max_vertices` is a 422."""
    if not source.is_active:
        raise SourceInactive("Data source is inactive")
    field = "type"
    try:
        element = Element(type=osm_type(values["type"]), osm_id="")
        field = "osm_id"
        element.osm_id = osm_id_of(values["osm_id"])
        field = "tags"
        element.tags = tags_of(values["tags"])
        field = "geom"
        element.geom = await _geometry(element.type, values["geom"], max_vertices)
    except (Invalid, BadInput) as exc:
        raise await _reject(
            session,
            source=source,
            exc=exc,
            field=field,
            typ=values.get("type"),
            osm_id=str(values.get("osm_id"))[:20],
            payload=values,
        ) from None
    current = await _existing(session, typ=element.type, osm_id=element.osm_id)
    if current is not None and not current.deleted:
        raise Conflict(
            f"{element.type} {element.osm_id} is tracked already: PUT or PATCH /objects/{{id}}",
            detail={"id": current.id},
        )
    report = await _store(session, source=source, element=element)
    return report.changes[0][1], report  # new, or deleted before: always a change


async def update_object(
    session: AsyncSession,
    *,
    obj: OSMObject,
    source: DataSource | None,
    tags: dict[str, Any] | None,
    geom: Any,
    max_vertices: int = DEFAULT_MAX_FEATURE_VERTICES,
) -> tuple[OSMObject, IngestReport]:
    """New tags and/or geometry (None: keep the current ones); a deleted object comes back.
    A way given a geometry of its own no longer follows its nodes."""
    payload = {"tags": tags, "geom": geom}
    element = Element(type=obj.type, osm_id=obj.osm_id, tags=obj.tags, geom=obj.geom, refs=obj.refs)
    field = "tags"
    try:
        element.tags = tags_of(obj.tags if tags is None else tags)
        field = "geom"
        if geom is not None:
            element.geom = await _geometry(obj.type, geom, max_vertices)
            if obj.type == "way":
                element.refs = None
    except (Invalid, BadInput) as exc:
        raise await _reject(
            session,
            source=source,
            exc=exc,
            field=field,
            typ=obj.type,
            osm_id=obj.osm_id,
            payload=payload,
        ) from None
    report = await _store(session, source=source, element=element)
    return _changed(report, obj), report


async def delete_object(
    session: AsyncSession, *, obj: OSMObject, source: DataSource | None
) -> IngestReport:
    """Marks the object deleted (a `delete` version; its last tags and geometry stay to look
    at, as for deletes from any source); deleting it again changes nothing."""
    element = Element(
        type=obj.type,
        osm_id=obj.osm_id,
        tags=dict(obj.tags),
        geom=obj.geom,
        refs=obj.refs,
        deleted=True,
    )
    return await _store(session, source=source, element=element)
