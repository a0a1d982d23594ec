"""A sixth app (tests/example_app) plugs in through its `AppSpec` alone: its route is
answered, its job runs, its seeder is called and its setting is read, env names included."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import example_app
from worldbase.apps import registry
from worldbase.core.migrate import upgrade_head
from worldbase.env_names import unknown_variable_warnings
from worldbase.seeding import seed_demo_data
from worldbase.settings import Settings

APPS = (*registry.APPS, example_app.spec)


def test_the_example_app_is_mounted_like_the_others(
    app_factory: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(worldbase_apps="dnd,example", hello_text="hi"), APPS)
    assert client.get("/").json()["apps"] == ["dnd", "example"]
    assert client.get("/example/greeting").json() == {"greeting": "hi"}
    assert client.get("/api/layers").status_code == 404  # samsyn is not enabled
    job_id = client.post("/example/greetings", params={"name": "Ada"}).json()["job_id"]
    deadline = time.monotonic() + 15
    while (job := client.get(f"/example/greetings/{job_id}").json())["status"] != "succeeded":
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["result"] == {"text": "hi, Ada"}


def test_a_disabled_example_app_is_not_mounted(
    app_factory: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    client = app_factory(make_settings(worldbase_apps="dnd"), APPS)
    assert client.get("/example/greeting").status_code == 404


def test_the_example_seeder_runs_with_the_others(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    migrated_served: None,
) -> None:
    monkeypatch.setenv("EXAMPLE_GREETING", "ahoy")
    monkeypatch.setattr(example_app, "SEEDED", [])
    settings = make_settings(worldbase_apps="example")
    if settings.is_sqlite:
        upgrade_head(settings)  # as `worldbase seed` does
    lines = asyncio.run(seed_demo_data(settings, APPS))
    assert "example: nothing to load" in lines
    assert example_app.SEEDED == ["ahoy"]


def test_app_settings_are_read_by_their_own_and_their_old_names(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: Any = make_settings()
    assert settings.app(example_app.ExampleSettings).greeting == "hello"
    monkeypatch.setenv("HELLO_TEXT", "old")
    assert make_settings().app(example_app.ExampleSettings).greeting == "old"
    monkeypatch.setenv("EXAMPLE_GREETING", "new")  # the app's own name wins
    assert make_settings().app(example_app.ExampleSettings).greeting == "new"


def test_every_registered_app_has_its_migration_branch() -> None:
    from alembic.script import ScriptDirectory

    from worldbase.core.migrate import MIGRATIONS_DIR

    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    labels = {label for rev in scripts.walk_revisions() for label in rev.branch_labels}
    for spec in registry.APPS:
        assert spec.models is not None and spec.migration_branch in labels, spec.name


def test_unknown_variable_warnings_know_every_apps_names() -> None:
    environ = {
        "SAMSYN_WMS_TIMEOUT": "1",
        "WORLDBASE_WMS_TIMEOUT": "1",
        "HABITAT_RASTER_URL": "x",
        "HABITATS_RASTER_URL": "x",
        "IMAGE_PROVIDER": "auto",
        "DND_IMAGE_PROVIDER": "auto",
        "BESTIARY_MAX_IMAGES": "3",
        "SAMSYN_NOPE": "1",
    }
    assert unknown_variable_warnings(environ) == [
        "SAMSYN_NOPE is not a Worldbase setting; it is ignored"
    ]
