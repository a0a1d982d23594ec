"""Alembic, driven from code: one history for the whole database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from worldbase.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["settings"] = settings
    return config


def upgrade_head(settings: Settings) -> None:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    # "heads": each app's migrations branch from the core revision (no merge churn between apps).
    command.upgrade(alembic_config(settings), "heads")


def downgrade_base(settings: Settings) -> None:
    command.downgrade(alembic_config(settings), "base")
