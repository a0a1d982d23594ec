"""Objects, history, data sources, stats and the validation log: queries and changes."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.osm.exceptions import ObjectNotFound, SourceInactive, SourceNotFound
from worldbase.apps.osm.history import create_entry
from worldbase.apps.osm.ingest import IngestReport, ingest
from worldbase.apps.osm.models import (
    DataSource,
    OSMObject,
    OSMObjectHistory,
    ValidationLogEntry,
)
from worldbase.apps.osm.parsing import parse_payload, truncate_payload
from worldbase.apps.osm.polling import POLLING_TYPES, poll_config
from worldbase.core.db import utcnow
from worldbase.core.errors import BadInput
from worldbase.core.source_policy import SourcePolicy
from worldbase.geo.spatial import bbox_filter

TOKEN_PREFIX = "wbsrc_"  # noqa: S105  (marks source tokens, not a secret)


# --- tag filters ---------------------------------------------------------------------------------


def parse_tag_filter(text: str) -> tuple[str, str | None]:
    key, sep, value = text.partition("=")
    # NUL: PostgreSQL text and JSONB cannot hold it (the filter also comes from WebSockets).
    if not key or len(key) > 255 or '"' in key or "\\" in key or "\x00" in text:
        raise BadInput(f"Invalid tag filter {text!r}: use key or key=value", detail={"tag": text})
    return key, (value if sep else None)


def tag_condition(session: AsyncSession, key: str, value: str | None) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        # JSONB containment / key existence: both served by the GIN index on tags.
        tags = type_coerce(OSMObject.tags, JSONB)
        if value is None:
            return tags.has_key(key)
        return tags.contains({key: value})
    path = f'$."{key}"'
    if value is None:
        return func.json_type(OSMObject.tags, path).is_not(None)
    return func.json_extract(OSMObject.tags, path) == value


# --- objects -----------------------------------------------------------------------------------


@dataclass
class ObjectFilters:
    type: str | None = None
    tags: builtins.list[tuple[str, str | None]] | None = None
    bbox: tuple[float, float, float, float] | None = None
    source_id: str | None = None
    changed_since: datetime | None = None
    include_deleted: bool = False


def _filtered(session: AsyncSession, query: Select[Any], filters: ObjectFilters) -> Select[Any]:
    if filters.type is not None:
        query = query.where(OSMObject.type == filters.type)
    for key, value in filters.tags or []:
        query = query.where(tag_condition(session, key, value))
    if filters.bbox is not None:
        query = query.where(bbox_filter(OSMObject.geom, *filters.bbox))
    if filters.source_id is not None:
        query = query.where(OSMObject.source_id == filters.source_id)
    if filters.changed_since is not None:
        query = query.where(OSMObject.updated_at >= filters.changed_since)
    if not filters.include_deleted:
        query = query.where(OSMObject.deleted.is_(False))
    return query


_Row = TypeVar("_Row")


async def _page(
    session: AsyncSession,
    query: Select[_Row],
    count: Select[Any],
    *,
    limit: int,
    offset: int,
) -> tuple[builtins.list[_Row], int]:
    """One page of the ordered `query`, and `count` of every match."""
    rows = await session.scalars(query.limit(limit).offset(offset))
    total = await session.scalar(count)
    return builtins.list(rows), int(total or 0)


async def list_objects(
    session: AsyncSession, *, filters: ObjectFilters, limit: int, offset: int
) -> tuple[builtins.list[OSMObject], int]:
    """Newest change first; `total` counts every match."""
    return await _page(
        session,
        _filtered(session, select(OSMObject), filters).order_by(
            OSMObject.updated_at.desc(), OSMObject.id
        ),
        _filtered(session, select(func.count(OSMObject.id)), filters),
        limit=limit,
        offset=offset,
    )


async def get_object_or_raise(session: AsyncSession, *, object_id: str) -> OSMObject:
    obj = await session.get(OSMObject, object_id)
    if obj is None:
        raise ObjectNotFound("Object not found")
    return obj


async def get_by_osm_id_or_raise(session: AsyncSession, *, osm_type: str, osm_id: str) -> OSMObject:
    obj = await session.scalar(
        select(OSMObject).where(OSMObject.type == osm_type, OSMObject.osm_id == osm_id)
    )
    if obj is None:
        raise ObjectNotFound(f"{osm_type} {osm_id} is not tracked")
    return obj


async def list_history(
    session: AsyncSession, *, object_id: str, limit: int, offset: int
) -> tuple[builtins.list[OSMObjectHistory], int]:
    where = OSMObjectHistory.object_id == object_id
    rows, total = await _page(
        session,
        select(OSMObjectHistory)
        .where(where)
        .order_by(OSMObjectHistory.version.desc(), OSMObjectHistory.recorded_at.desc()),
        select(func.count(OSMObjectHistory.id)).where(where),
        limit=limit,
        offset=offset,
    )
    if not total:  # stored by a bulk path and unchanged since: its row is its only version
        obj = await session.get(OSMObject, object_id)
        if obj is not None:
            return ([create_entry(obj)] if offset == 0 else []), 1
    return rows, total


# --- data sources --------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def list_sources(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[builtins.list[DataSource], int]:
    return await _page(
        session,
        select(DataSource).order_by(DataSource.created_at, DataSource.id),
        select(func.count(DataSource.id)),
        limit=limit,
        offset=offset,
    )


async def get_source_or_raise(session: AsyncSession, *, source_id: str) -> DataSource:
    source = await session.get(DataSource, source_id)
    if source is None:
        raise SourceNotFound("Data source not found")
    return source


async def create_source(
    session: AsyncSession, *, values: dict[str, Any], policy: SourcePolicy | None = None
) -> tuple[DataSource, str]:
    """The new source and its push token (only the token's hash is stored); a polling
    source's URL must pass `policy` (the default policy when None)."""
    if values.get("type") in POLLING_TYPES:
        poll_config(
            values["type"], values.get("connection_info") or {}, policy=policy or SourcePolicy()
        )
    token = new_token()
    source = DataSource(**values, token_hash=hash_token(token))
    session.add(source)
    await session.commit()
    return source, token


async def update_source(
    session: AsyncSession,
    *,
    source: DataSource,
    values: dict[str, Any],
    policy: SourcePolicy | None = None,
) -> DataSource:
    if source.type in POLLING_TYPES and values.get("connection_info") is not None:
        poll_config(source.type, values["connection_info"], policy=policy or SourcePolicy())
    for name, value in values.items():
        setattr(source, name, value)
    source.updated_at = utcnow()
    await session.commit()
    return source


async def rotate_token(session: AsyncSession, *, source: DataSource) -> str:
    token = new_token()
    source.token_hash = hash_token(token)
    source.updated_at = utcnow()
    await session.commit()
    return token


async def delete_source(session: AsyncSession, *, source: DataSource) -> None:
    """Objects and history stay (their source_id becomes null)."""
    await session.delete(source)
    await session.commit()


def token_matches(source: DataSource, token: str) -> bool:
    return hmac.compare_digest(source.token_hash, hash_token(token))


async def get_source_by_token(session: AsyncSession, *, token: str) -> DataSource | None:
    """The source whose push token this is (looked up by the token's hash, which is unique)."""
    return await session.scalar(
        select(DataSource).where(DataSource.token_hash == hash_token(token))
    )


# --- ingestion ---------------------------------------------------------------------------------


async def log_rejection(
    session: AsyncSession, *, source: DataSource | None, channel: str, reason: str, payload: Any
) -> None:
    session.add(
        ValidationLogEntry(
            source_id=source.id if source else None,
            channel=channel,
            reason=reason[:2000],
            payload=truncate_payload(payload),
            created_at=utcnow(),
        )
    )
    await session.commit()


async def ingest_payload(
    session: AsyncSession, *, source: DataSource, payload: Any, channel: str, max_vertices: int
) -> IngestReport:
    """Parse OSM JSON or GeoJSON and store it. A payload in neither format is logged and
    rejected whole (BadInput); otherwise each element is accepted or rejected on its own
    (more than `max_vertices` positions: rejected, WORLDBASE_MAX_FEATURE_VERTICES named)."""
    if not source.is_active:
        raise SourceInactive("Data source is inactive")
    try:
        elements, rejected = parse_payload(payload, max_vertices=max_vertices)
    except BadInput as exc:
        await log_rejection(
            session, source=source, channel=channel, reason=exc.message, payload=payload
        )
        raise
    return await ingest(
        session,
        elements=elements,
        rejected=rejected,
        source=source,
        channel=channel,
        max_vertices=max_vertices,
    )


# --- admin ---------------------------------------------------------------------------------------


async def stats(session: AsyncSession) -> dict[str, Any]:
    by_type = dict(
        (
            await session.execute(
                select(OSMObject.type, func.count(OSMObject.id))
                .where(OSMObject.deleted.is_(False))
                .group_by(OSMObject.type)
            )
        ).all()
    )
    return {
        "objects": {t: int(by_type.get(t, 0)) for t in ("node", "way", "relation")},
        "deleted_objects": int(
            await session.scalar(select(func.count(OSMObject.id)).where(OSMObject.deleted)) or 0
        ),
        "history_entries": int(await session.scalar(select(func.count(OSMObjectHistory.id))) or 0),
        "data_sources": int(await session.scalar(select(func.count(DataSource.id))) or 0),
        "active_data_sources": int(
            await session.scalar(select(func.count(DataSource.id)).where(DataSource.is_active)) or 0
        ),
        "validation_log_entries": int(
            await session.scalar(select(func.count(ValidationLogEntry.id))) or 0
        ),
        "last_ingest_at": await session.scalar(select(func.max(DataSource.last_ingest_at))),
    }


async def list_validation_log(
    session: AsyncSession, *, source_id: str | None, limit: int, offset: int
) -> tuple[builtins.list[ValidationLogEntry], int]:
    query = select(ValidationLogEntry)
    count = select(func.count(ValidationLogEntry.id))
    if source_id is not None:
        query = query.where(ValidationLogEntry.source_id == source_id)
        count = count.where(ValidationLogEntry.source_id == source_id)
    return await _page(
        session,
        query.order_by(ValidationLogEntry.created_at.desc(), ValidationLogEntry.id),
        count,
        limit=limit,
        offset=offset,
    )
