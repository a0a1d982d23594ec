"""Demo world (idempotent): a synthetic classified habitat COG in storage, a dozen habitats
with real IUCN codes and colours, and species with ranges and sightings.

The COG goes to `storage://habitats/demo-habitat-raster.tif`; when `HABITAT_RASTER_URL` is
unset the app reads its habitat raster from there (see `raster.py`).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from shapely.geometry import Point
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.habitats import service, service_species
from worldbase.apps.habitats.models import Habitat
from worldbase.apps.habitats.service_species import Occurrence
from worldbase.core.storage_backends import create_storage
from worldbase.settings import Settings

# The habitat raster when HABITAT_RASTER_URL is unset: the COG `worldbase seed` writes.
DEMO_RASTER_KEY = "habitats/demo-habitat-raster.tif"
DEMO_RASTER_SIZE = (4096, 2048)  # ~0.09 degree pixels, ~0.3 MB, ~2 s to make

# (iucn_code, name, ecosystem_type, colour); raster classes follow the codes.
DEMO_HABITATS: list[tuple[str, str, str, str]] = [
    ("1.1", "Forest - Boreal", "forest", "#1B5E20"),
    ("1.4", "Forest - Temperate", "forest", "#2E7D32"),
    ("1.6", "Forest - Subtropical/Tropical Moist Lowland", "forest", "#00695C"),
    ("2.1", "Savanna - Dry", "savanna", "#C9A227"),
    ("3.4", "Shrubland - Temperate", "shrubland", "#8D6E63"),
    ("4.4", "Grassland - Temperate", "grassland", "#9CCC65"),
    ("5.1", "Wetlands - Permanent Rivers/Streams/Creeks", "wetland", "#1E88E5"),
    ("5.5", "Wetlands - Permanent Freshwater Lakes", "wetland", "#1565C0"),
    ("6", "Rocky areas", "rocky", "#9E9E9E"),
    ("8.1", "Desert - Hot", "desert", "#F4D03F"),
    ("14.1", "Artificial/Terrestrial - Arable Land", "artificial", "#E64A19"),
    ("14.5", "Artificial/Terrestrial - Urban Areas", "artificial", "#B71C1C"),
]
# (raster value, colour) of every demo class, for tests and benchmarks.
DEMO_CLASSES: list[tuple[int, str]] = [
    (int(code.split(".")[0]) * 100 + (int(code.split(".")[1]) if "." in code else 0), color)
    for code, _, _, color in DEMO_HABITATS
]

# (name, scientific name, habitat types, [(lon, lat, range radius km)], sightings [(lon, lat)])
DEMO_SPECIES: list[
    tuple[str, str, list[str], list[tuple[float, float, float]], list[tuple[float, float]]]
] = [
    ("European Badger", "Meles meles", ["1.4", "4.4"], [(10.0, 50.0, 900)], [(10.5, 50.5)]),
    (
        "Red Fox",
        "Vulpes vulpes",
        ["1.4", "4.4", "14.1", "14.5"],
        [(10.0, 50.0, 1500), (-100.0, 45.0, 1800)],
        [(13.4, 52.5)],
    ),
    ("Eurasian Lynx", "Lynx lynx", ["1.1", "1.4"], [(25.0, 60.0, 1200)], [(24.9, 60.2)]),
    ("Moose", "Alces alces", ["1.1", "5.5"], [(30.0, 62.0, 1400), (-110.0, 58.0, 1500)], []),
    ("Eurasian Beaver", "Castor fiber", ["5.1", "5.5"], [(20.0, 55.0, 800)], [(13.0, 52.0)]),
    ("Lion", "Panthera leo", ["2.1", "4.4"], [(25.0, 0.0, 1800)], [(35.0, -2.5)]),
    ("Dromedary", "Camelus dromedarius", ["8.1"], [(15.0, 22.0, 1500)], []),
    ("Chamois", "Rupicapra rupicapra", ["6", "4.4"], [(10.5, 46.5, 300)], [(11.0, 47.0)]),
]


async def _write_raster(settings: Settings) -> str:
    from worldbase.geo.synthetic import write_classified_cog

    storage = create_storage(settings)
    try:
        if await storage.exists(DEMO_RASTER_KEY):
            return "kept"
        with tempfile.TemporaryDirectory(prefix="habitats-seed-") as tmp:
            path = Path(tmp) / "demo.tif"
            width, height = DEMO_RASTER_SIZE
            classes = [value for value, _ in DEMO_CLASSES]
            await asyncio.to_thread(
                write_classified_cog, path, width=width, height=height, classes=classes, seed=7
            )
            await storage.put(DEMO_RASTER_KEY, path.read_bytes(), content_type="image/tiff")
        return "wrote"
    finally:
        await storage.close()


def _range(lon: float, lat: float, km: float) -> Occurrence:
    from worldbase.geo.geodesic import geodesic_region

    return Occurrence(geodesic_region(Point(lon, lat), km * 1000.0), {"kind": "range"})


async def seed_demo(session: AsyncSession, settings: Settings) -> str:
    raster = await _write_raster(settings)
    if await session.scalar(select(func.count()).select_from(Habitat)):
        return f"{raster} the demo habitat raster; habitats already there"
    for code, name, ecosystem, color in DEMO_HABITATS:
        values = {"name": name, "iucn_code": code, "ecosystem_type": ecosystem, "color_hex": color}
        await service.create(session, values=values, commit=False)
    for name, scientific, types, ranges, sightings in DEMO_SPECIES:
        occurrences = [_range(*r) for r in ranges] + [
            Occurrence(Point(lon, lat), {"kind": "sighting"}) for lon, lat in sightings
        ]
        species, _ = await service_species.create(
            session,
            values={"name": name, "scientific_name": scientific, "habitat_types": types},
            commit=False,
        )
        await service_species.insert_occurrences(
            session, species_id=species.id, occurrences=occurrences
        )
    await session.commit()
    return (
        f"{raster} the demo habitat raster ({DEMO_RASTER_KEY}); created {len(DEMO_HABITATS)} "
        f"habitats and {len(DEMO_SPECIES)} species"
    )
