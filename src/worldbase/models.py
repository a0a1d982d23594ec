"""Imports every table (core and every app's `models` module) so Alembic and tests see the
whole schema, whichever apps are mounted."""

from __future__ import annotations

from worldbase.core import models as core_models  # noqa: F401
from worldbase.core.db import Base
from worldbase.plugins import app_modules
from worldbase.settings import ALL_APPS

app_modules(ALL_APPS, "models")

metadata = Base.metadata
