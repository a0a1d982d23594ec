"""Imports every table so that Alembic and tests see the whole schema."""

from worldbase.core import models as core_models  # noqa: F401
from worldbase.core.db import Base

metadata = Base.metadata
