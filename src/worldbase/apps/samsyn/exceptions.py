"""Domain exceptions of the samsyn app beyond core's (`core.errors` maps them by status)."""

from __future__ import annotations

from worldbase.core.errors import DomainError


class NotImplementedYet(DomainError):
    """Raster and WMS tiles of a layer are served by a later issue."""

    status_code = 501


class NotARasterLayer(DomainError):
    """A raster service (info, statistics, preview, point, times) asked of a non-GeoTIFF layer."""

    status_code = 400
