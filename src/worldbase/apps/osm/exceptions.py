"""Domain errors of the osm app (mapped to status codes by core.errors)."""

from __future__ import annotations

from worldbase.core.errors import Conflict, NotAuthenticated, NotFound


class ObjectNotFound(NotFound):
    pass


class SourceNotFound(NotFound):
    pass


class SourceInactive(Conflict):
    """Pushing to (or polling) a deactivated data source."""


class InvalidSourceToken(NotAuthenticated):
    pass


class CreateModeUnavailable(Conflict):
    """An explicit create-mode import into a non-empty (or busy) objects table."""
