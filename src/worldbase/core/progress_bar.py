"""Running a long import from the command line: in this process, against the configured
database, with a progress bar on the console (the same code the upload jobs run)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from worldbase.core.db import Database
from worldbase.core.migrate import upgrade_head
from worldbase.settings import Settings

T = TypeVar("T")
Report = Callable[[float, str], Awaitable[None]]  # (fraction done 0..1, message)


def run_with_progress_bar(
    settings: Settings,
    console: Console,
    label: str,
    work: Callable[[Database, Report], Awaitable[T]],
) -> T:
    """`work(db, report)` to completion, `report` moving the bar. SQLite is migrated first;
    PostgreSQL must be migrated with `worldbase migrate`. Its errors propagate."""
    if settings.is_sqlite:
        upgrade_head(settings)

    async def run() -> T:
        db = Database(settings, pooled=False)
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task(label, total=1.0)

                async def report(fraction: float, message: str) -> None:
                    bar.update(task, completed=fraction, description=message)

                return await work(db, report)
        finally:
            await db.dispose()

    return asyncio.run(run())
