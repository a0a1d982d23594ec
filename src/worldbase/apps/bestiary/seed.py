"""Demo data: a small Skyrim-style bestiary, each character with a model built from trimesh
primitives (no downloads) and stored as GLB like an uploaded one."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import trimesh
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.bestiary import service
from worldbase.apps.bestiary.models import Character
from worldbase.core.storage_backends import create_storage
from worldbase.settings import Settings


def _part(mesh: trimesh.Trimesh, color: tuple[int, int, int], at: tuple[float, ...]) -> Any:
    mesh.apply_translation(at)
    colors = np.tile(np.array([*color, 255], dtype=np.uint8), (len(mesh.vertices), 1))
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colors)
    return mesh


def _biped(body: tuple[int, int, int], skin: tuple[int, int, int], scale: float) -> bytes:
    parts = [
        _part(trimesh.creation.capsule(height=0.7, radius=0.28), body, (0, 0, 1.15)),
        _part(trimesh.creation.icosphere(subdivisions=2, radius=0.2), skin, (0, 0, 1.75)),
        _part(trimesh.creation.cylinder(radius=0.09, height=0.8), body, (-0.15, 0, 0.4)),
        _part(trimesh.creation.cylinder(radius=0.09, height=0.8), body, (0.15, 0, 0.4)),
        _part(trimesh.creation.cylinder(radius=0.07, height=0.7), skin, (-0.4, 0, 1.2)),
        _part(trimesh.creation.cylinder(radius=0.07, height=0.7), skin, (0.4, 0, 1.2)),
    ]
    mesh = trimesh.util.concatenate(parts)
    mesh.apply_scale(scale)
    return _glb(mesh)


def _quadruped(body: tuple[int, int, int], scale: float, *, wings: bool = False) -> bytes:
    torso = trimesh.creation.capsule(height=1.0, radius=0.3)
    torso.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]))
    parts = [
        _part(torso, body, (0, 0, 0.9)),
        _part(trimesh.creation.cone(radius=0.2, height=0.5), body, (0.9, 0, 1.0)),
    ]
    for x in (-0.4, 0.4):
        for y in (-0.18, 0.18):
            leg = trimesh.creation.cylinder(radius=0.07, height=0.6)
            parts.append(_part(leg, body, (x, y, 0.3)))
    if wings:
        for side in (-1, 1):
            parts.append(_part(trimesh.creation.box((0.8, 1.2, 0.03)), body, (0, side * 0.8, 1.2)))
    mesh = trimesh.util.concatenate(parts)
    mesh.apply_scale(scale)
    return _glb(mesh)


def _glb(mesh: Any) -> bytes:
    # glTF is Y-up: stand the Z-up model upright.
    mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
    data: bytes = trimesh.Scene(mesh).export(file_type="glb")
    return data


BESTIARY: list[tuple[dict[str, Any], Any]] = [
    (
        {
            "name": "Frost Troll",
            "race": "Troll",
            "level": 24,
            "location": "The Throat of the World",
            "faction": "Creatures",
            "difficulty": "hard",
            "description": "A white-furred troll of the high mountains; regenerates quickly.",
            "stats": {"health": 580, "magicka": 0, "stamina": 380},
            "skills": {"unarmed": 70},
            "combat": {"weakness": "fire", "damage": 40},
        },
        lambda: _biped((225, 230, 235), (180, 190, 200), 1.4),
    ),
    (
        {
            "name": "Draugr Deathlord",
            "race": "Draugr",
            "level": 40,
            "location": "Ancient Nord barrows",
            "faction": "Undead",
            "difficulty": "deadly",
            "description": "An ancient Nord warrior bound to guard its tomb; uses the Thu'um.",
            "stats": {"health": 750, "magicka": 100, "stamina": 300},
            "skills": {"two_handed": 90, "heavy_armor": 85},
            "combat": {"weakness": "fire", "resistances": ["frost"]},
        },
        lambda: _biped((70, 80, 75), (120, 110, 90), 1.0),
    ),
    (
        {
            "name": "Sabre Cat",
            "race": "Sabre Cat",
            "level": 12,
            "location": "The tundra of Whiterun Hold",
            "faction": "Creatures",
            "difficulty": "medium",
            "description": "A large predator with long fangs that hunts the plains at night.",
            "stats": {"health": 150, "stamina": 200},
            "skills": {},
            "combat": {"damage": 30, "speed": "fast"},
        },
        lambda: _quadruped((200, 160, 90), 1.0),
    ),
    (
        {
            "name": "Blood Dragon",
            "race": "Dragon",
            "level": 36,
            "location": "Skies of Skyrim",
            "faction": "Dragons",
            "difficulty": "deadly",
            "description": "A red-scaled dragon that breathes fire or frost and knows old words.",
            "stats": {"health": 2458, "magicka": 500},
            "skills": {"shouts": ["Fire Breath", "Unrelenting Force"]},
            "combat": {"weakness": "frost", "flying": True},
        },
        lambda: _quadruped((150, 30, 30), 2.5, wings=True),
    ),
    (
        {
            "name": "Spriggan",
            "race": "Spriggan",
            "level": 10,
            "location": "The forests of the Rift",
            "faction": "Nature",
            "difficulty": "medium",
            "description": "A wooden forest spirit that heals itself and calls animals to aid.",
            "stats": {"health": 250, "magicka": 150},
            "skills": {"restoration": 60},
            "combat": {"weakness": "fire"},
        },
        lambda: _biped((110, 80, 50), (90, 160, 70), 1.0),
    ),
]


async def seed_demo(session: AsyncSession, settings: Settings) -> str:
    if await session.scalar(select(func.count(Character.id))):
        return "characters already there"
    storage = create_storage(settings)
    try:
        for values, build in BESTIARY:
            character = await service.create(session, values=dict(values))
            glb = await asyncio.to_thread(build)
            await service.set_model_glb(session, storage, character=character, glb=glb)
    finally:
        await storage.close()
    return f"created {len(BESTIARY)} characters with 3D models"
