"""Demo data: the seed's example layers (WMS-T, TiTiler GeoTIFF, MPA polygons) on one map."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import numpy as np
from shapely.geometry import box
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.apps.samsyn.features.service import insert_rows, summarize
from worldbase.apps.samsyn.layers import service as service_layers
from worldbase.apps.samsyn.models import (
    Layer,
    LayerFeature,
    Map,
    MapLayer,
    PermissionLevel,
    SourceType,
)
from worldbase.apps.samsyn.schemas import SST_LAYER
from worldbase.core import users
from worldbase.core.db import utcnow
from worldbase.core.storage_backends import create_storage
from worldbase.seeding import DEMO_EMAIL
from worldbase.settings import Settings

MAP_NAME = "North Sea marine plan (demo)"
DEMO_BATHYMETRY_KEY = "samsyn/demo-bathymetry.tif"
LAYERS = [
    {
        **SST_LAYER,
        "source_config": SST_LAYER["source_config"] | {"dimensions": {"ELEVATION": "0"}},
        "metadata": {"author": "Copernicus Marine Service", "doi": "10.48670/moi-00016"},
    },
    {
        "name": "North Sea Bathymetry",
        "source_type": "geotiff",
        "category": "bathymetry",
        "is_global": True,
        # A synthetic depth grid in Worldbase's own storage (written by the seed), so the demo
        # draws real raster tiles offline; the seed's original points at a TiTiler server.
        "source_config": {
            "delivery": "tiles",
            "url": f"storage://{DEMO_BATHYMETRY_KEY}",
            "bounds": [[2.0, 51.0], [8.0, 56.0]],
            "tileParams": {"rescale": "-200,0", "colormap_name": "blues_r"},
        },
        "metadata": {"author": "Worldbase demo (synthetic, after GEBCO 2023)", "year": 2023},
    },
    {
        "name": "Marine Protected Areas",
        "source_type": "vector",
        "category": "conservation",
        "is_global": True,
        "style_config": {"stroke": "#14b8a6", "strokeWidth": 2, "fill": "#14b8a620"},
    },
]
MPAS = [
    (box(2.5, 54.5, 3.5, 55.5), {"name": "Dogger Bank", "protection_level": "no-take"}),
    (box(4.0, 53.0, 5.0, 54.0), {"name": "Frisian Front", "protection_level": "restricted"}),
]


def _write_bathymetry(path: Path) -> None:
    """A smooth depth grid (metres, negative down) over the demo map's sea, as a COG."""
    import rasterio
    from rasterio.transform import from_bounds

    height, width = 500, 600
    lat, lon = np.mgrid[56.0 : 51.0 : height * 1j, 2.0 : 8.0 : width * 1j]
    depth = (
        -20
        - 60 * (lat - 51.0) / 5
        - 40 * np.sin(lon * 1.3) ** 2
        - 60 * np.exp(-((lon - 3.0) ** 2 + (lat - 55.0) ** 2))
    )
    profile = {
        "driver": "COG", "dtype": "float32", "count": 1, "width": width, "height": height,
        "crs": "EPSG:4326", "transform": from_bounds(2.0, 51.0, 8.0, 56.0, width, height),
        "nodata": -9999.0, "compress": "deflate", "blocksize": 256,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(depth.astype("float32"), 1)


async def _store_bathymetry(settings: Settings) -> None:
    storage = create_storage(settings)
    try:
        if await storage.exists(DEMO_BATHYMETRY_KEY):
            return
        with tempfile.TemporaryDirectory(prefix="samsyn-seed-") as tmp:
            path = Path(tmp) / "bathymetry.tif"
            await asyncio.to_thread(_write_bathymetry, path)
            await storage.put(DEMO_BATHYMETRY_KEY, path.read_bytes(), content_type="image/tiff")
    finally:
        await storage.close()


async def seed_demo(session: AsyncSession, settings: Settings) -> str:
    user = await users.get_by_email(session, email=DEMO_EMAIL)
    if user is None:
        return "skipped (no demo user)"
    if await session.scalar(select(Map.id).where(Map.name == MAP_NAME, Map.created_by == user.id)):
        return "demo map already there"
    map_ = Map(
        name=MAP_NAME,
        center_lat=54.0,
        center_lng=4.0,
        zoom=6,
        basemap="osm",
        permission_level=PermissionLevel.public,
        created_by=user.id,
    )
    session.add(map_)
    await session.flush()
    await _store_bathymetry(settings)
    for order, values in enumerate(LAYERS):
        layer: Layer = await service_layers.create(session, user=user, values=values, commit=False)
        if layer.source_type == SourceType.vector:
            now = utcnow()
            features = [
                LayerFeature(
                    id=uuid.uuid4(),
                    layer_id=layer.id,
                    geometry=g,
                    properties=p,
                    display_order=i,
                    created_at=now,
                    updated_at=now,
                )
                for i, (g, p) in enumerate(MPAS)
            ]
            await insert_rows(session, features)
            await service_layers.refresh_stats(
                session, layer=layer, added=summarize([g for g, _ in MPAS])
            )
        session.add(
            MapLayer(
                map_id=map_.id,
                layer_id=layer.id,
                display_order=order,
                is_visible=True,
                opacity=1.0,
                added_at=utcnow(),
            )
        )
    await session.commit()
    return f"created the public demo map {MAP_NAME!r} with {len(LAYERS)} layers"
