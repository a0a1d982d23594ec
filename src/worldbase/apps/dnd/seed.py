"""Demo data: a few procedurally generated images and one cached scene (idempotent)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.dnd import scenes, service
from worldbase.apps.dnd.models import ImageAsset
from worldbase.apps.dnd.providers import ProceduralProvider
from worldbase.apps.dnd.schemas import ImageGenerate
from worldbase.core.storage_backends import create_storage
from worldbase.settings import Settings

DEMO_IMAGES = [
    ImageGenerate(
        subject_type="item",
        subject_name="Flame Tongue",
        prompt="A longsword wreathed in fire, glowing runes on the blade",
        aspect_ratio="1:1",
        component="item-card",
    ),
    ImageGenerate(
        subject_type="item",
        subject_name="Healing Potion",
        prompt="A red healing potion in a round flask with a cork",
        aspect_ratio="1:1",
        component="item-card",
    ),
    ImageGenerate(
        subject_type="character",
        subject_name="Elminster",
        prompt="An old wizard with a staff in a castle courtyard at night",
        aspect_ratio="9:16",
        component="character-portrait",
    ),
]


async def seed_demo(session: AsyncSession, settings: Settings) -> str:
    # Always the offline painter: seeding must not spend a Gemini quota.
    provider = ProceduralProvider()
    storage = create_storage(settings)
    try:
        made = 0
        for demo in DEMO_IMAGES:
            exists = await session.scalar(
                select(func.count())
                .select_from(ImageAsset)
                .where(ImageAsset.subject_name == demo.subject_name)
            )
            if not exists:
                await service.create(
                    session,
                    storage=storage,
                    provider=provider,
                    data=demo,
                    quality=settings.webp_quality,
                    created_by=None,
                )
                made += 1
        _, cached = await scenes.get_or_create(
            session,
            storage=storage,
            provider=provider,
            settings=settings,
            locks=scenes.KeyedLocks(),
            location="Tavern",
            time_of_day="Evening",
            weather="Rain",
        )
    finally:
        await storage.close()
    scene = "kept" if cached else "cached"
    return f"{made} demo images generated, {scene} the Tavern/Evening/Rain scene"
