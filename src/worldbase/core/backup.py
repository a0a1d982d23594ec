"""Backups: one `worldbase-YYYYmmddTHHMMSSZ.tar.gz` per run, restore into an empty database.

The archive holds `manifest.json`, the database dump (`database.sqlite3` made with SQLite's
online backup API, or `database.pgdump` from `pg_dump -Fc`) and, for the local storage
stored objects under `storage/` (`BACKUP_OBJECTS`, on by default for every backend, so a
backup alone refills an empty bucket; off, S3/GCS objects stay in their bucket: the manifest
lists them and a restore reports the ones that are gone). Row counts are taken from the
same snapshot as the dump, so a restore can prove it brought back exactly that.
Restore with the server stopped: it replaces the SQLite file underneath any open handle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from worldbase import __version__
from worldbase.core.db import Database
from worldbase.core.errors import Conflict, DomainError
from worldbase.core.storage import Storage
from worldbase.core.storage_backends import create_storage
from worldbase.settings import Settings

log = logging.getLogger("worldbase.backup")

FORMAT = 1
NAME_PREFIX = "worldbase-"
NAME_SUFFIX = ".tar.gz"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
CHUNK = 1024 * 1024
# Tables owned by extensions or derived indexes: not part of the data we compare.
_SKIPPED_TABLES = ("spatial_ref_sys",)
_SKIPPED_PREFIXES = ("sqlite_", "rtree_")
_POSTGIS_ENTRY = re.compile(r"\bEXTENSION (- )?postgis\b")


class BackupError(DomainError):
    """A backup could not be made, read or restored; the message says why in one line."""

    status_code = 422


class RestoreRefused(Conflict):
    """The target database already holds data."""


@dataclass
class RestoreReport:
    row_counts: dict[str, int]
    restored_objects: int = 0
    missing_objects: list[str] = field(default_factory=list)


# --- Database helpers ------------------------------------------------------------------------


def _data_tables(names: list[str]) -> list[str]:
    return sorted(
        name
        for name in names
        if name not in _SKIPPED_TABLES and not name.startswith(_SKIPPED_PREFIXES)
    )


async def row_counts(conn: AsyncConnection) -> dict[str, int]:
    """Rows per table of the connected database (extension and index tables left out)."""
    names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    quote = conn.dialect.identifier_preparer.quote
    counts = {}
    for name in _data_tables(names):
        # The name comes from the database's own catalog and is quoted.
        query = text(f"SELECT count(*) FROM {quote(name)}")  # noqa: S608
        counts[name] = int((await conn.execute(query)).scalar_one())
    return counts


async def _alembic_revision(conn: AsyncConnection, counts: dict[str, int]) -> str | None:
    if "alembic_version" not in counts:
        return None
    result = await conn.execute(text("SELECT version_num FROM alembic_version"))
    return result.scalar()


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.sqlalchemy_url).database
    if not database or database == ":memory:":
        raise BackupError("The SQLite database is in memory: there is no file to back up")
    return Path(database).resolve()


def _pg_url(settings: Settings) -> URL:
    return make_url(settings.sqlalchemy_url)


def _pg_env(url: URL) -> dict[str, str]:
    # Connection details through libpq's environment: the password never shows in `ps`.
    env = dict(os.environ)
    env.update({"PGHOST": url.host or "localhost", "PGPORT": str(url.port or 5432)})
    if url.username:
        env["PGUSER"] = url.username
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    if "sslmode" in url.query:
        env["PGSSLMODE"] = str(url.query["sslmode"])
    return env


async def _run(args: list[str], env: dict[str, str]) -> bytes:
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError as exc:
        raise BackupError(f"{args[0]} is not installed (PostgreSQL client tools)") from exc
    stdout, stderr = await proc.communicate()
    if proc.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{args[0]} failed: {' | '.join(lines[-3:]) or proc.returncode}")
    return stdout


# --- Create ------------------------------------------------------------------------------------


def _new_archive_path(directory: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{NAME_PREFIX}{stamp}{NAME_SUFFIX}"
    n = 1
    while path.exists():  # two backups within one second
        n += 1
        path = directory / f"{NAME_PREFIX}{stamp}-{n}{NAME_SUFFIX}"
    return path


async def _dump_sqlite(settings: Settings, target: Path) -> tuple[dict[str, int], str | None]:
    source = _sqlite_path(settings)
    if not source.exists():
        raise BackupError(f"The SQLite database {source} does not exist")

    def copy() -> None:
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)

    await asyncio.to_thread(copy)
    engine = create_async_engine(f"sqlite+aiosqlite:///{target}", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            counts = await row_counts(conn)
            return counts, await _alembic_revision(conn, counts)
    finally:
        await engine.dispose()


async def _dump_postgres(settings: Settings, target: Path) -> tuple[dict[str, int], str | None]:
    url = _pg_url(settings)
    database = Database(settings, pooled=False)
    try:
        async with database.engine.connect() as conn:
            # Count inside the snapshot pg_dump uses, so counts and dump agree exactly.
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            snapshot = (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
            counts = await row_counts(conn)
            revision = await _alembic_revision(conn, counts)
            await _run(
                ["pg_dump", "-Fc", f"--snapshot={snapshot}", f"--file={target}", str(url.database)],
                _pg_env(url),
            )
            await conn.rollback()
    finally:
        await database.dispose()
    return counts, revision


async def _add_object(
    tar: tarfile.TarFile, storage: Storage, entry: dict[str, Any], workdir: Path
) -> bool:
    # One object at a time through a temp file: memory stays flat for large files.
    key = entry["key"]
    spool = workdir / "object.part"
    try:
        entry["content_type"] = (await storage.stat(key)).content_type  # listings lack it
        with spool.open("wb") as out:
            async for chunk in storage.stream(key):
                await asyncio.to_thread(out.write, chunk)
    except DomainError:  # deleted since it was listed
        return False
    await asyncio.to_thread(tar.add, spool, f"storage/{key}")
    spool.unlink()
    return True


def _object_entry(obj: Any) -> dict[str, Any]:
    return {"key": obj.key, "size": obj.size, "etag": obj.etag, "content_type": obj.content_type}


async def create_backup(settings: Settings) -> Path:
    """Write a backup archive into `settings.backups_path` and return its path."""
    directory = settings.backups_path
    directory.mkdir(parents=True, exist_ok=True)
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    storage = create_storage(settings)
    try:
        with tempfile.TemporaryDirectory(prefix=".tmp-", dir=directory) as tmp:
            work = Path(tmp)
            dump = work / (SQLITE_FILE if backend == "sqlite" else PG_FILE)
            dump_fn = _dump_sqlite if backend == "sqlite" else _dump_postgres
            counts, revision = await dump_fn(settings, dump)
            objects = [_object_entry(obj) async for obj in storage.list("")]
            archived = settings.backup_objects or settings.storage_backend == "local"
            partial = work / "archive.tar.gz"
            with tarfile.open(partial, "w:gz") as tar:
                await asyncio.to_thread(tar.add, dump, dump.name)
                if archived:
                    objects = [o for o in objects if await _add_object(tar, storage, o, work)]
                manifest = {
                    "format": FORMAT,
                    "created_at": datetime.now(UTC).isoformat(),
                    "version": __version__,
                    "database_backend": backend,
                    "database_file": dump.name,
                    "alembic_revision": revision,
                    "row_counts": counts,
                    "storage_backend": settings.storage_backend,
                    "objects_archived": archived,
                    "objects": objects,
                }
                manifest_path = work / "manifest.json"
                manifest_path.write_text(json.dumps(manifest, indent=2))
                tar.add(manifest_path, "manifest.json")
            path = _new_archive_path(directory)
            os.replace(partial, path)
    finally:
        await storage.close()
    log.info("backup written", extra={"path": str(path), "objects": len(objects)})
    return path


# --- Restore -----------------------------------------------------------------------------------


def _extract(path: Path, into: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BackupError(f"Backup file {path} does not exist")
    try:
        with tarfile.open(path, "r:*") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{path.name} is not a readable Worldbase backup: {exc}") from exc
    try:
        manifest = json.loads((into / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(
            f"{path.name} has no valid manifest.json: not a Worldbase backup"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path.name} has an unknown backup format")
    if not (into / str(manifest.get("database_file"))).is_file():
        raise BackupError(f"{path.name} holds no database dump")
    return manifest


async def _target_counts(settings: Settings) -> dict[str, int]:
    if settings.is_sqlite and not _sqlite_path(settings).exists():
        return {}
    database = Database(settings, pooled=False)
    try:
        async with database.engine.connect() as conn:
            return await row_counts(conn)
    except DomainError:
        raise
    except Exception as exc:
        raise BackupError(f"Cannot read the target database: {type(exc).__name__}: {exc}") from exc
    finally:
        await database.dispose()


def _replace_sqlite(settings: Settings, dump: Path) -> None:
    target = _sqlite_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(dump, staged)
    # A stale WAL would be replayed onto the new file: it belongs to the old database.
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(staged, target)


async def _restore_postgres(settings: Settings, dump: Path) -> None:
    database = Database(settings, pooled=False)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    except Exception as exc:
        raise BackupError(f"Cannot prepare the target database: {type(exc).__name__}") from exc
    finally:
        await database.dispose()
    url = _pg_url(settings)
    # PostGIS was created above: restoring its entry would drop and recreate it (slow, and
    # impossible once other tables use it), so the restore list leaves it out.
    listing = (await _run(["pg_restore", "--list", str(dump)], _pg_env(url))).decode()
    keep = [line for line in listing.splitlines() if not _POSTGIS_ENTRY.search(line)]
    use_list = dump.with_suffix(".list")
    use_list.write_text("\n".join(keep) + "\n")
    args = ["pg_restore", "--no-owner", "--clean", "--if-exists", "--single-transaction"]
    args += ["--exit-on-error", f"--use-list={use_list}", f"--dbname={url.database}", str(dump)]
    await _run(args, _pg_env(url))


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk


async def _restore_objects(
    settings: Settings, manifest: dict[str, Any], work: Path
) -> tuple[int, list[str]]:
    root = (work / "storage").resolve()
    restored = 0
    missing = []
    storage = create_storage(settings)
    try:
        for entry in manifest["objects"]:
            key = entry["key"]
            source = (root / key).resolve()
            if manifest["objects_archived"] and source.is_file() and source.is_relative_to(root):
                data = source.read_bytes() if entry["size"] <= 4 * CHUNK else _file_chunks(source)
                await storage.put(key, data, content_type=entry.get("content_type"))
                restored += 1
            elif not await storage.exists(key):
                missing.append(key)
    finally:
        await storage.close()
    return restored, missing


async def restore_backup(settings: Settings, path: Path, *, force: bool = False) -> RestoreReport:
    """Restore `path` into the (empty) database and storage of `settings`.

    Raises `RestoreRefused` when the target holds rows (unless `force`), `BackupError` when
    the file is unreadable, made for another database backend, or the restored row counts
    differ from the manifest. Objects the manifest lists but storage lacks are reported.
    """
    with tempfile.TemporaryDirectory(prefix="worldbase-restore-") as tmp:
        work = Path(tmp)
        manifest = await asyncio.to_thread(_extract, Path(path), work)
        backend = "sqlite" if settings.is_sqlite else "postgresql"
        if manifest["database_backend"] != backend:
            raise BackupError(
                f"The backup holds a {manifest['database_backend']} database; "
                f"the target is {backend}"
            )
        existing = await _target_counts(settings)
        filled = sorted(t for t, n in existing.items() if n and t != "alembic_version")
        if filled and not force:
            raise RestoreRefused(
                "The target database is not empty; restore into an empty database "
                "or pass force=True",
                detail={"tables_with_rows": filled},
            )
        dump = work / manifest["database_file"]
        if backend == "sqlite":
            await asyncio.to_thread(_replace_sqlite, settings, dump)
        else:
            await _restore_postgres(settings, dump)
        restored, missing = await _restore_objects(settings, manifest, work)
    counts = await _target_counts(settings)
    expected: dict[str, int] = manifest["row_counts"]
    differ = {t: [n, counts.get(t)] for t, n in expected.items() if counts.get(t) != n}
    if differ:
        raise BackupError("Restored row counts differ from the backup", detail=differ)
    if missing:
        log.warning("objects missing after restore", extra={"missing": missing[:20]})
    return RestoreReport(row_counts=counts, restored_objects=restored, missing_objects=missing)


# --- Retention ---------------------------------------------------------------------------------


def list_backups(settings: Settings) -> list[Path]:
    """Backup archives, oldest first."""
    directory = settings.backups_path
    if not directory.is_dir():
        return []
    found = directory.glob(f"{NAME_PREFIX}*{NAME_SUFFIX}")
    return sorted((p for p in found if p.is_file()), key=lambda p: p.stat().st_mtime)


def prune_backups(settings: Settings, *, now: float | None = None) -> list[Path]:
    """Delete archives older than `backup_retention_days`; the newest one always stays.

    A retention of 0 or less keeps everything.
    """
    days = settings.backup_retention_days
    backups = list_backups(settings)
    if days <= 0 or not backups:
        return []
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = []
    for path in backups[:-1]:
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
