"""Tables of the osm app: data sources, tracked objects, their history, the validation log.

Ids are string UUIDs (the seed's convention). `osm_objects` holds the latest state of each
(type, osm_id); `osm_object_history` every version seen, including the current one, with
its geometry as WKB (history is read one object at a time, so it needs no spatial index),
except for nodes written by the bulk import paths: until such a node first changes, its
object row is its only version (`history.py`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from worldbase.core.db import Base, JSONType, TimestampMixin, utcnow
from worldbase.geo.spatial import Geometry, spatial_index

OSM_TYPES = ("node", "way", "relation")
SOURCE_TYPES = ("rest", "websocket", "file", "replication", "overpass")


def new_id() -> str:
    return str(uuid.uuid4())


class DataSource(TimestampMixin, Base):
    __tablename__ = "data_sources"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(20))  # one of SOURCE_TYPES
    # url, query, interval_seconds...: what a polling source needs to reach its upstream.
    connection_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Optional area of interest (GeoJSON geometry) and tag filter (["amenity=cafe", "shop"]).
    area: Mapped[dict[str, Any] | None] = mapped_column()
    tag_filter: Mapped[list[str] | None] = mapped_column(JSONType)
    # sha256 of the source's push token (the token is shown once, at creation/rotation).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sequence_number: Mapped[int | None] = mapped_column(BigInteger)  # replication state
    last_polled_at: Mapped[datetime | None] = mapped_column()
    last_ingest_at: Mapped[datetime | None] = mapped_column()


class OSMObject(TimestampMixin, Base):
    __tablename__ = "osm_objects"
    __table_args__ = (
        UniqueConstraint("type", "osm_id"),
        Index("ix_osm_objects_updated_at", "updated_at"),
        Index("ix_osm_objects_tags", "tags", postgresql_using="gin").ddl_if(dialect="postgresql"),
        # Which ways use a node (a moved node reshapes them): `refs @> '[id]'`.
        Index(
            "ix_osm_objects_way_refs",
            "refs",
            postgresql_using="gin",
            postgresql_ops={"refs": "jsonb_path_ops"},
            postgresql_where=text("type = 'way'"),
        ).ddl_if(dialect="postgresql"),
        spatial_index("osm_objects", "geom"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Looked up by (type, osm_id): the unique constraint's index, no index of its own.
    osm_id: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(10))  # node, way, relation
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    geom: Mapped[BaseGeometry | None] = mapped_column(Geometry())
    # Way node ids, or relation members [{"type", "ref", "role"}].
    refs: Mapped[list[Any] | None] = mapped_column(JSONType)
    source_id: Mapped[str | None] = mapped_column(
        ForeignKey("data_sources.id", ondelete="SET NULL"), index=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    timestamp: Mapped[datetime | None] = mapped_column()
    changeset: Mapped[int | None] = mapped_column(BigInteger)
    user: Mapped[str | None] = mapped_column(String(255))
    uid: Mapped[int | None] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(default=False)


class OSMObjectHistory(Base):
    __tablename__ = "osm_object_history"
    __table_args__ = (Index("ix_osm_object_history_object_id_version", "object_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    object_id: Mapped[str] = mapped_column(ForeignKey("osm_objects.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(10))  # create, modify, delete
    version: Mapped[int] = mapped_column(Integer)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    geom_wkb: Mapped[bytes | None] = mapped_column(LargeBinary)
    timestamp: Mapped[datetime | None] = mapped_column()
    changeset: Mapped[int | None] = mapped_column(BigInteger)
    user: Mapped[str | None] = mapped_column(String(255))
    source_id: Mapped[str | None] = mapped_column(
        ForeignKey("data_sources.id", ondelete="SET NULL")
    )
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ValidationLogEntry(Base):
    __tablename__ = "osm_validation_log"
    __table_args__ = (Index("ix_osm_validation_log_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    source_id: Mapped[str | None] = mapped_column(
        ForeignKey("data_sources.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(20))  # rest, websocket, file, replication...
    osm_type: Mapped[str | None] = mapped_column(String(10))
    osm_id: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[Any | None] = mapped_column(JSONType)  # the rejected input, truncated
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
