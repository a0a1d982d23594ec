"""`worldbase serve | worker | migrate | seed | backup | restore | users`."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from worldbase.apps import registry
from worldbase.settings import ConfigurationError, Settings, get_settings

app = typer.Typer(
    help="Worldbase: one backend for map, game and 3D-asset apps.", no_args_is_help=True
)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
# `worldbase import <kind> FILE`: each app that imports files adds its commands here (every
# app's: the command line is built before any setting is read).
import_app = typer.Typer(help="Import data files.", no_args_is_help=True)
app.add_typer(import_app, name="import")
for spec in registry.APPS:
    if spec.import_commands is not None:
        spec.import_commands(import_app)
console = Console(stderr=True)


@import_app.callback()
def _import_group() -> None:
    """Import data files."""


def _settings() -> Settings:
    """The settings, checked, with the enabled apps configured (their jobs installed)."""
    settings = get_settings()
    try:
        settings.check()
        settings, _ = registry.configure(settings)
    except ConfigurationError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    return settings


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default HOST, else 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default PORT, else 8000).")] = None,
    workers: Annotated[int, typer.Option(help="Web worker processes.")] = 1,
) -> None:
    """Serve the API (and, in embedded mode, run jobs in-process)."""
    import uvicorn

    settings = _settings()
    # HOST/PORT from the environment or `.env` (seed 004's `.env` sets PORT).
    host = host or settings.host
    port = port or settings.port
    if workers > 1 and settings.inline_worker:
        # In-process jobs and hub are per process: N workers would each recover (and rerun)
        # the others' running jobs, and events would not cross between them.
        console.print(
            "[red]error:[/red] --workers > 1 needs REDIS_URL, or WORLDBASE_INLINE_WORKER=false "
            "with a separate `worldbase worker`"
        )
        raise typer.Exit(2)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # One /metrics for all workers: prometheus-client aggregates their files.
        metrics_dir = settings.data_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    if settings.is_sqlite:
        from worldbase.core.migrate import upgrade_head

        upgrade_head(settings)  # once here, so several workers don't race to migrate
    from worldbase.core.http_server import HTTP_PROTOCOL

    uvicorn.run(
        "worldbase.app:create_app_from_env",
        factory=True,
        # Request heads are capped (431) before the app or a parser buffer pays for them.
        http=HTTP_PROTOCOL,
        h11_max_incomplete_event_size=settings.worldbase_max_header_bytes,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=False,
        # Live events go to many sockets at once: per-message deflate would compress the
        # same frame once per client (a tenth of the CPU of a busy fan-out), for JSON
        # frames that are mostly small. A proxy in front can compress instead.
        ws_per_message_deflate=False,
        # SIGTERM: no new connections, WebSockets closed with 1012 (service restart) so
        # clients reconnect elsewhere, in-flight requests given this long to finish.
        timeout_graceful_shutdown=math.ceil(settings.worldbase_shutdown_timeout),
    )


@app.command()
def worker() -> None:
    """Consume jobs (use with REDIS_URL; start as many as you like)."""
    from worldbase.core.http import configure_logging
    from worldbase.core.jobs import run_worker
    from worldbase.env_names import warn_unknown_variables

    settings = _settings()  # installs the enabled apps' job handlers
    configure_logging(settings.log_level, json_logs=settings.log_json)
    warn_unknown_variables()
    run_worker(settings)


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "heads",
    downgrade: Annotated[bool, typer.Option(help="Downgrade to REVISION instead.")] = False,
) -> None:
    """Apply database migrations (SQLite also migrates itself at start)."""
    from alembic import command

    from worldbase.core.migrate import alembic_config

    settings = _settings()
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = alembic_config(settings)
    if downgrade:
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)
    console.print(f"database {'downgraded' if downgrade else 'upgraded'} to {revision}")


@app.command()
def seed() -> None:
    """Load demo data (idempotent)."""
    from worldbase.seeding import seed_demo_data

    settings = _settings()
    if settings.is_sqlite:
        from worldbase.core.migrate import upgrade_head

        upgrade_head(settings)  # embedded: seeding a fresh data dir just works
    for line in asyncio.run(seed_demo_data(settings)):
        console.print(line)


@app.command()
def backup() -> None:
    """Back up the database (and local storage) into the backup dir; prune old backups."""
    from worldbase.core.backup import create_backup, prune_backups
    from worldbase.core.errors import DomainError

    settings = _settings()
    try:
        path = asyncio.run(create_backup(settings))
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(f"backup written: {path}")
    for old in prune_backups(settings):
        console.print(f"pruned: {old}")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Backup file.")],
    force: Annotated[bool, typer.Option(help="Overwrite a database that has data.")] = False,
) -> None:
    """Restore a backup made by `worldbase backup` into an empty database."""
    from worldbase.core.backup import restore_backup
    from worldbase.core.errors import DomainError

    settings = _settings()
    try:
        report = asyncio.run(restore_backup(settings, file, force=force))
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    rows = sum(report.row_counts.values())
    console.print(f"restored {rows} rows and {report.restored_objects} files from {file}")
    for key in report.missing_objects:
        console.print(f"[yellow]missing from storage:[/yellow] {key}")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="E-mail address (the login).")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Password.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create a user (or update the password/admin flag of an existing one)."""
    from worldbase.seeding import create_or_update_user

    settings = _settings()
    try:
        created, email = asyncio.run(
            create_or_update_user(settings, email=email, password=password, admin=admin, name=name)
        )
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{'created' if created else 'updated'} {'admin' if admin else 'user'} {email}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
