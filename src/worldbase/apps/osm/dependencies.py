"""Existence and permission checks that return the object, and grouped query parameters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query
from starlette.requests import HTTPConnection

from worldbase.apps.osm import service
from worldbase.apps.osm.exceptions import InvalidSourceToken
from worldbase.apps.osm.models import DataSource, OSMObject
from worldbase.core.auth import AdminUser, BearerToken, authenticate_token
from worldbase.core.db import Session
from worldbase.core.errors import BadInput, Forbidden, NotAuthenticated
from worldbase.core.models import User
from worldbase.geo.geometry import parse_bbox

ObjectId = Annotated[str, Path(max_length=36, description="The object's id (a UUID string)")]
SourceId = Annotated[str, Path(max_length=36, description="The data source's id")]


async def object_for_read(object_id: ObjectId, session: Session) -> OSMObject:
    """Objects are public, as in OSM itself."""
    return await service.get_object_or_raise(session, object_id=object_id)


async def source_for_admin(source_id: SourceId, _admin: AdminUser, session: Session) -> DataSource:
    return await service.get_source_or_raise(session, source_id=source_id)


async def authorize_push(
    source: DataSource, token: str | None, session: Session, connection: HTTPConnection
) -> None:
    """A source's own token, or an administrator's bearer token."""
    if not token:
        raise NotAuthenticated("A data source token or an admin token is required")
    if token.startswith(service.TOKEN_PREFIX):
        if not service.token_matches(source, token):
            raise InvalidSourceToken("Invalid data source token")
        return
    user = await authenticate_token(session, token=token, settings=connection.app.state.settings)
    if not user.is_admin:
        raise Forbidden("Only the source's token or an administrator may push data")


async def source_for_push(
    source_id: SourceId,
    session: Session,
    connection: HTTPConnection,
    token: BearerToken,
) -> DataSource:
    source = await service.get_source_or_raise(session, source_id=source_id)
    await authorize_push(source, token, session, connection)
    return source


@dataclass
class ObjectWriter:
    """Who writes objects through `/objects`: an administrator, or a data source by its token."""

    admin: User | None = None
    source: DataSource | None = None


async def object_writer(
    session: Session, connection: HTTPConnection, token: BearerToken
) -> ObjectWriter:
    if token is None:
        raise NotAuthenticated("A data source token or an admin token is required")
    if token.startswith(service.TOKEN_PREFIX):
        source = await service.get_source_by_token(session, token=token)
        if source is None:
            raise InvalidSourceToken("Invalid data source token")
        return ObjectWriter(source=source)
    user = await authenticate_token(session, token=token, settings=connection.app.state.settings)
    if not user.is_admin:
        raise Forbidden("Only a data source's token or an administrator may write objects")
    return ObjectWriter(admin=user)


ObjectWriterDep = Annotated[ObjectWriter, Depends(object_writer)]


async def source_for_new_object(
    session: Session, *, writer: ObjectWriter, source_id: str
) -> DataSource:
    """The source a new object is written from (`source_id` of the body)."""
    source = await session.get(DataSource, source_id)
    if source is None:
        raise BadInput(
            "Unknown data source",
            detail=[
                {"loc": ["body", "source_id"], "msg": "no such data source", "type": "value_error"}
            ],
        )
    if writer.source is not None and writer.source.id != source.id:
        raise Forbidden("This token belongs to another data source")
    return source


async def object_for_write(
    object_id: ObjectId, writer: ObjectWriterDep, session: Session
) -> tuple[OSMObject, DataSource | None]:
    """The object and the source its write comes from (the object's own): an administrator
    may write any object, a source's token only that source's objects."""
    obj = await service.get_object_or_raise(session, object_id=object_id)
    if writer.source is not None:
        if obj.source_id != writer.source.id:
            raise Forbidden("This object belongs to another data source (or to none)")
        return obj, writer.source
    source = await session.get(DataSource, obj.source_id) if obj.source_id else None
    return obj, source


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def object_filters_without_type(
    tag: Annotated[
        list[str] | None,
        Query(description="`key` or `key=value`; repeat for several (all must match)"),
    ] = None,
    bbox: Annotated[
        str | None, Query(description="minx,miny,maxx,maxy in degrees", examples=["13,52,14,53"])
    ] = None,
    source_id: Annotated[str | None, Query(max_length=36)] = None,
    changed_since: Annotated[datetime | None, Query(description="ISO 8601")] = None,
    include_deleted: bool = False,
) -> service.ObjectFilters:
    return service.ObjectFilters(
        tags=[service.parse_tag_filter(t) for t in tag or []],
        bbox=parse_bbox(bbox) if bbox is not None else None,
        source_id=source_id,
        changed_since=_utc(changed_since),
        include_deleted=include_deleted,
    )


async def object_filters(
    filters: Annotated[service.ObjectFilters, Depends(object_filters_without_type)],
    type: Annotated[str | None, Query(pattern="^(node|way|relation)$")] = None,
) -> service.ObjectFilters:
    filters.type = type
    return filters


ObjectForRead = Annotated[OSMObject, Depends(object_for_read)]
ObjectForWrite = Annotated[tuple[OSMObject, DataSource | None], Depends(object_for_write)]
SourceForAdmin = Annotated[DataSource, Depends(source_for_admin)]
SourceForPush = Annotated[DataSource, Depends(source_for_push)]
Limit = Annotated[int, Query(ge=1, le=1000)]
MAX_OFFSET = 10_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def page(items: Any, total: int, limit: int, offset: int) -> dict[str, Any]:
    """The body of a `...Page` schema (`items` and where they sit among `total`)."""
    return {"items": items, "total": total, "limit": limit, "offset": offset}
