"""`worldbase import habitats FILE.csv` and `worldbase import species FILE`, with a progress bar.

Same code as the admin uploads, in this process, against the configured database (SQLite
is migrated first; PostgreSQL must be migrated with `worldbase migrate`). All or nothing:
a bad file prints every bad row (line or feature number) and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from worldbase.settings import get_settings

console = Console(stderr=True)


def _run(kind: str, file: Path) -> None:
    from worldbase.apps.habitats import imports, imports_species
    from worldbase.core.db import Database
    from worldbase.core.errors import DomainError
    from worldbase.core.progress_bar import Report, run_with_progress_bar

    run_import = imports.import_habitats if kind == "habitats" else imports_species.import_species

    async def work(db: Database, progress: Report) -> imports.ImportReport:
        async with db.sessionmaker() as session:
            return await run_import(session, path=file, filename=file.name, progress=progress)

    try:
        report = run_with_progress_bar(get_settings(), console, f"importing {file.name}", work)
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        errors = (exc.detail or {}).get("errors") if isinstance(exc.detail, dict) else None
        for item in (errors or [])[1:]:
            console.print(f"  {item['at']}: {item['message']}")
        raise typer.Exit(1) from exc
    extra = f", {report.features} features" if kind == "species" else ""
    console.print(f"imported {report.created} {kind}{extra}")


def import_habitats(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="habitats CSV")],
) -> None:
    """Import habitats from a CSV file (name, iucn_code, ..., geometry as WKT or GeoJSON)."""
    _run("habitats", file)


def import_species(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="CSV, GeoJSON, GeoPackage, zipped SHP"),
    ],
) -> None:
    """Import species with their ranges and sightings (CSV, GeoJSON, GeoPackage, Shapefile)."""
    _run("species", file)


def register(app: typer.Typer) -> None:
    """Add `habitats` and `species` to the `worldbase import` group."""
    app.command("habitats")(import_habitats)
    app.command("species")(import_species)
