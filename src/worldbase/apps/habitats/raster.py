"""Which habitat raster the app reads: `HABITAT_RASTER_URL`, else the seeded demo COG.

When `HABITAT_RASTER_URL` is unset, the raster is `storage://habitats/demo-habitat-raster.tif`
(what `worldbase seed` writes), so the demo world works with no configuration. If neither
exists, tile and look-up requests answer 503 with how to fix it.
"""

from __future__ import annotations

import weakref

from worldbase.apps.habitats.exceptions import NoHabitatRaster
from worldbase.apps.habitats.seed import DEMO_RASTER_KEY
from worldbase.core.storage import Storage
from worldbase.geo.raster_sources import STORAGE_SCHEME
from worldbase.settings import Settings

DEMO_RASTER_URL = f"{STORAGE_SCHEME}{DEMO_RASTER_KEY}"
# The app's own objects in storage, readable as its raster (`check_source_allowed`).
OWN_STORAGE = "habitats/"
# Storage backends on which the demo raster was seen: it is never deleted by the app, so
# one successful check per storage object is enough.
_seen: weakref.WeakSet[Storage] = weakref.WeakSet()


async def raster_url(settings: Settings, storage: Storage) -> str:
    """The habitat raster's URL; `NoHabitatRaster` (503) when none is configured or seeded."""
    if settings.habitat_raster_url:
        return settings.habitat_raster_url
    if storage not in _seen:
        if not await storage.exists(DEMO_RASTER_KEY):
            raise NoHabitatRaster(
                "No habitat raster: set HABITAT_RASTER_URL or run `worldbase seed`",
                detail={"setting": "HABITAT_RASTER_URL"},
            )
        _seen.add(storage)
    return DEMO_RASTER_URL
