"""Set environment variables that look like Worldbase settings but are not: warned at start-up.

A misspelt name (`DATABSE_URL`) or another project's name (`STORAGE_PROVIDER`) would
otherwise be ignored without a word while the server runs on its defaults.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from worldbase.apps.registry import APPS
from worldbase.settings import Settings

log = logging.getLogger("worldbase.settings")

# --- Variables that look like settings but are not ------------------------------------------
# Read by Worldbase outside Settings (`worldbase serve`, prometheus-client) or by the tests.
OTHER_KNOWN_VARIABLES = frozenset({"PROMETHEUS_MULTIPROC_DIR"})
IGNORED_PREFIXES = ("WORLDBASE_TEST_",)
# Prefixes of our settings' names (the seeds' names too, and each app's own prefix): a set
# variable starting with one of them is meant for us.
SETTING_PREFIXES = (
    "WORLDBASE_",
    "DATABASE_",
    "STORAGE_",
    "JWT_",
    "JWKS_",
    "CORS_",
    "REDIS_",
    "CACHE_",
    "BACKUP_",
    "GEMINI_",
    "HABITAT_",
    "QUEUE_",
    "IMAGE_",
    "WEBP_",
    "CLERK_",
    "ALLOWED_",
    "MAX_",
    *(
        str(spec.settings.model_config.get("env_prefix", "")).upper()
        for spec in APPS
        if spec.settings
    ),
)


def known_variables() -> frozenset[str]:
    """Every environment name the core's and the apps' settings read (field names, or their
    own and the seeds' names when a field lists them), upper case."""
    names = set(OTHER_KNOWN_VARIABLES)
    classes: list[type[BaseSettings]] = [Settings]
    classes += [spec.settings for spec in APPS if spec.settings is not None]
    for cls in classes:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names.update(str(choice).upper() for choice in alias.choices)
            else:
                names.add((prefix + name).upper())
    return frozenset(names)


def unknown_variable_warnings(environ: Mapping[str, str]) -> list[str]:
    """One line per set variable that looks like a setting but is not one (with a hint)."""
    known = known_variables()
    lines = []
    for name in sorted({key.upper() for key in environ}):
        if name in known or name.startswith(IGNORED_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if close:
            lines.append(f"{name} is not a Worldbase setting (did you mean {close[0]}?)")
        elif name.startswith(SETTING_PREFIXES):
            lines.append(f"{name} is not a Worldbase setting; it is ignored")
    return lines


def warn_unknown_variables(env_file: Path | None = Path(".env")) -> list[str]:
    """Log a warning for each such variable in the environment and in `.env`; return them."""
    environ: dict[str, str | None] = dict(os.environ)
    if env_file is not None and env_file.is_file():
        environ.update(dotenv_values(env_file))
    lines = unknown_variable_warnings({k: v or "" for k, v in environ.items()})
    for line in lines:
        log.warning(line)
    return lines
