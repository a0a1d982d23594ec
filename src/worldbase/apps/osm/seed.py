"""Demo data: one data source and a few objects around Berlin's Alexanderplatz (idempotent:
the objects carry versions, so seeding again stores nothing new)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.osm import service
from worldbase.apps.osm.ingest import ingest
from worldbase.apps.osm.models import DataSource
from worldbase.apps.osm.parsing import parse_payload
from worldbase.settings import Settings

DEMO_SOURCE = "Demo: Berlin Mitte"


def _node(osm_id: int, lon: float, lat: float, **tags: str) -> dict[str, Any]:
    return {"type": "node", "id": osm_id, "lon": lon, "lat": lat, "version": 1, "tags": tags}


DEMO_ELEMENTS: list[dict[str, Any]] = [
    _node(9_000_000_001, 13.4115, 52.5219, amenity="cafe", name="Café am Platz"),
    _node(9_000_000_002, 13.4098, 52.5206, amenity="cafe", name="Kaffeebar Mitte"),
    _node(9_000_000_003, 13.4133, 52.5227, amenity="cafe", name="Espresso Alex", cuisine="coffee"),
    _node(9_000_000_004, 13.4081, 52.5196, amenity="bench"),
    _node(9_000_000_005, 13.4127, 52.5201),
    {
        "type": "way",
        "id": 9_000_000_101,
        "version": 1,
        "nodes": [9_000_000_004, 9_000_000_002, 9_000_000_005],
        "tags": {"highway": "footway", "name": "Demo-Weg"},
    },
]  # fmt: skip


async def seed_demo(session: AsyncSession, settings: Settings) -> str:
    source = await session.scalar(select(DataSource).where(DataSource.name == DEMO_SOURCE))
    made = source is None
    if source is None:
        source, _token = await service.create_source(
            session,
            values={
                "name": DEMO_SOURCE,
                "description": "Demo objects pushed by `worldbase seed`",
                "type": "rest",
                "tag_filter": None,
            },
        )
    elements, rejected = parse_payload({"elements": DEMO_ELEMENTS})
    report = await ingest(
        session, elements=elements, rejected=rejected, source=source, channel="rest"
    )
    verb = "created" if made else "kept"
    return (
        f"{verb} data source {DEMO_SOURCE!r}; objects created {report.created}, "
        f"unchanged {report.unchanged}"
    )
