"""The apps, in one list: a new app is one folder under worldbase/apps plus one line here.

Like app.py and cli.py this is a composition root; core and geo never import it.
"""

from __future__ import annotations

from collections.abc import Sequence

from worldbase.apps import bestiary, dnd, habitats, osm, samsyn
from worldbase.core.appspec import AppSpec, install
from worldbase.settings import ConfigurationError, Settings

APPS: tuple[AppSpec, ...] = (habitats.spec, samsyn.spec, dnd.spec, osm.spec, bestiary.spec)


def enabled(settings: Settings, apps: Sequence[AppSpec] = APPS) -> list[AppSpec]:
    """The apps WORLDBASE_APPS names (`all`: every one), in its order."""
    by_name = {spec.name: spec for spec in apps}
    names = settings.worldbase_apps
    if names == ["all"]:
        return list(apps)
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise ConfigurationError(f"unknown apps {unknown}; known: {', '.join(by_name)}")
    return [by_name[name] for name in names]


def configure(settings: Settings, apps: Sequence[AppSpec] = APPS) -> tuple[Settings, list[AppSpec]]:
    """Check the enabled apps' settings and install their jobs and counters; returns the
    settings with the app names resolved (and what they publish) and the enabled specs."""
    specs = enabled(settings, apps)
    configured = settings.model_copy(update={"worldbase_apps": [spec.name for spec in specs]})
    configured._public_rasters = frozenset(
        url for spec in specs if spec.public_rasters for url in spec.public_rasters(settings)
    )
    for spec in specs:
        if spec.settings is not None:
            settings.app(spec.settings).check()
        install(spec)
    return configured, specs
