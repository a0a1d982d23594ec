"""`worldbase import osm FILE`: import an .osm, .osm.pbf or .osc file with a progress bar.

Runs in this process (same code as the `osm.import_file` job), against the configured
database; SQLite is migrated first, PostgreSQL must be migrated (`worldbase migrate`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from worldbase.settings import get_settings

console = Console(stderr=True)


def import_osm(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".osm/.osm.pbf/.osc")],
    source: Annotated[
        str | None, typer.Option(help="Data source id to attribute the objects to.")
    ] = None,
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="First load: fail unless the objects table is empty (PostgreSQL builds the "
            "indexes once at the end; an empty table gets this mode anyway).",
        ),
    ] = False,
) -> None:
    """Import OpenStreetMap objects from a file (diffs mark deletes, history is kept)."""
    from worldbase.apps.osm.files import file_suffix, import_file
    from worldbase.core.db import Database
    from worldbase.core.errors import DomainError
    from worldbase.core.migrate import upgrade_head

    settings = get_settings()
    try:
        file_suffix(file.name)
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    if settings.is_sqlite:
        upgrade_head(settings)

    async def run() -> dict[str, object]:
        db = Database(settings, pooled=False)
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task(f"importing {file.name}", total=1.0)

                async def progress(fraction: float, message: str) -> None:
                    bar.update(task, completed=fraction, description=message)

                report = await import_file(
                    db, file, source_id=source, progress=progress, create=create
                )
            return report.summary()
        finally:
            await db.dispose()

    try:
        summary = asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(
        "created {created}, modified {modified}, deleted {deleted}, unchanged {unchanged}, "
        "rejected {rejected}".format(**summary)
    )


def register(app: typer.Typer) -> None:
    """Add `osm` to the `worldbase import` group."""
    app.command("osm")(import_osm)
