"""Every table (core and every app's models) so Alembic and tests see the whole schema,
whichever apps are mounted."""

from __future__ import annotations

from worldbase.apps.registry import APPS
from worldbase.core import models as core_models  # noqa: F401
from worldbase.core.db import Base

APP_MODELS = [spec.models for spec in APPS if spec.models is not None]
metadata = Base.metadata
