"""Scratch space and staged uploads that outlive nothing: no temp folder or staging object is
left behind by a job that failed, was cancelled, or whose process was killed.

- `work_dir(kind)` is a temp folder named `worldbase-<pid>-<kind>-...`, removed in `finally`;
  `sweep_temp` (at start-up and with the job reaper) removes those of dead processes, and
  legacy `samsyn-*` folders past the grace period.
- A job's params list the storage keys it owns under `staging_keys` (`staging(key)`); core
  deletes them when the job ends (any terminal state), and `sweep_staging` deletes objects
  under the apps' registered staging prefixes that no queued or running job owns.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from worldbase.core.db import Database, utcnow
from worldbase.core.errors import NotFound
from worldbase.core.models import Job, JobStatus
from worldbase.core.storage import Storage

log = logging.getLogger("worldbase.cleanup")

TEMP_PREFIX = "worldbase-"
# Folders older versions made without the pid in their name: removed once past the grace.
LEGACY_TEMP_PREFIXES = ("samsyn-cog-", "samsyn-import-", "samsyn-upload-")
STAGING_PARAM = "staging_keys"

_LIVE: set[str] = set()  # this process's work dirs in use
_STAGING_PREFIXES: list[str] = []


@contextlib.contextmanager
def work_dir(kind: str) -> Iterator[Path]:
    """A private temp folder for one piece of work, removed however the work ends."""
    path = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-{kind}-"))
    _LIVE.add(str(path))
    try:
        yield path
    finally:
        _LIVE.discard(str(path))
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _stale_temp(entry: os.DirEntry[str], *, grace: float, now: float) -> bool:
    name = entry.name
    if name.startswith(TEMP_PREFIX):
        pid = name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit():
            return False  # not a work dir (e.g. worldbase-restore-...)
        if int(pid) == os.getpid():  # an earlier process with our pid (a container restart)
            return entry.path not in _LIVE
        return not _alive(int(pid))
    if name.startswith(LEGACY_TEMP_PREFIXES):
        return now - entry.stat(follow_symlinks=False).st_mtime > grace
    return False


def sweep_temp(*, grace: float, root: Path | None = None) -> list[Path]:
    """Remove the work dirs of dead processes (and legacy ones past `grace` seconds)."""
    removed: list[Path] = []
    now = time.time()
    with os.scandir(root or tempfile.gettempdir()) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False) and _stale_temp(entry, grace=grace, now=now):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(Path(entry.path))
            except OSError:  # vanished meanwhile, or not ours to read
                continue
    if removed:
        log.warning("removed %d stale temp folder(s): %s", len(removed), removed[:5])
    return removed


def register_staging_prefix(prefix: str) -> None:
    """Declare a storage prefix whose objects belong to jobs (uploads waiting for a job)."""
    if prefix not in _STAGING_PREFIXES:
        _STAGING_PREFIXES.append(prefix)


def staging(*keys: str) -> dict[str, Any]:
    """Job params naming the storage keys the job owns (deleted when it ends)."""
    return {STAGING_PARAM: list(keys)}


def staging_keys(params: dict[str, Any] | None) -> list[str]:
    keys = (params or {}).get(STAGING_PARAM) or []
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


async def delete_keys(storage: Storage, keys: list[str]) -> None:
    """Best effort: a key that cannot be deleted now is swept later."""
    for key in keys:
        try:
            await storage.delete(key)
        except NotFound:
            continue
        except Exception:
            log.warning("could not delete staged object %s", key, exc_info=True)


async def sweep_staging(*, db: Database, storage: Storage, grace: float) -> list[str]:
    """Delete staged objects older than `grace` seconds that no queued or running job owns."""
    if not _STAGING_PREFIXES:
        return []
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(Job.params).where(Job.status.in_([JobStatus.queued, JobStatus.running]))
        )
        owned = {key for params in rows for key in staging_keys(params)}
    cutoff = utcnow() - timedelta(seconds=grace)
    orphans = []
    for prefix in _STAGING_PREFIXES:
        async for item in storage.list(prefix):
            modified = item.modified_at
            if modified.tzinfo is None:
                modified = modified.replace(tzinfo=cutoff.tzinfo)
            if item.key not in owned and modified < cutoff:
                orphans.append(item.key)
    await delete_keys(storage, orphans)
    if orphans:
        log.warning("removed %d orphaned staged object(s): %s", len(orphans), orphans[:5])
    return orphans
