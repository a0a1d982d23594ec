"""Imports every table (core and every app's `models` module) so Alembic and tests see the
whole schema, whichever apps are mounted."""

from __future__ import annotations

import importlib

from worldbase.core import models as core_models  # noqa: F401
from worldbase.core.db import Base
from worldbase.settings import ALL_APPS

for _app in ALL_APPS:
    _module = f"worldbase.apps.{_app}.models"
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:  # an app without tables yet
        if exc.name != _module:
            raise

metadata = Base.metadata
