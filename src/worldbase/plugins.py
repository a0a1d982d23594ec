"""How apps plug in: by convention, each app package may have `models`, `jobs` and `seed`
modules. Like app.py, this is a composition root (core and geo never import apps)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType


def app_modules(apps: Iterable[str], name: str) -> list[ModuleType]:
    """Import `worldbase.apps.<app>.<name>` for each app that has one."""
    modules = []
    for app in apps:
        module = f"worldbase.apps.{app}.{name}"
        try:
            modules.append(importlib.import_module(module))
        except ModuleNotFoundError as exc:  # the app has no such module (yet)
            if exc.name != module:
                raise
    return modules
