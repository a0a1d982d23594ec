"""Backups on the current backend: back up, restore into an empty database, compare."""

from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import BACKEND, create_pg_database
from tests.core.test_health import app_services, in_app
from worldbase.core.backup import (
    BackupError,
    RestoreRefused,
    create_backup,
    list_backups,
    prune_backups,
    restore_backup,
)
from worldbase.core.db import Database
from worldbase.core.models import Job, JobStatus, User
from worldbase.core.storage_backends import create_storage
from worldbase.settings import Settings

BIG = os.urandom(5 * 1024 * 1024 + 123)  # more than one read chunk, streamed on restore


def seed(client: TestClient, prefix: str) -> dict[str, bytes]:
    """Three users, two jobs and three stored objects through the running app's services."""
    objects = {
        f"{prefix}/hello.txt": b"hello",
        f"{prefix}/nested/deep/map.json": b'{"a": 1}',
        f"{prefix}/big.bin": BIG,
    }

    async def insert(services: Any) -> None:
        async with services.db.sessionmaker() as session:
            users = [User(email=f"u{i}@example.com", name=f"User {i}") for i in range(3)]
            session.add_all(users)
            await session.flush()
            session.add(Job(kind="export", status=JobStatus.succeeded, owner_id=users[0].id))
            session.add(Job(kind="import", status=JobStatus.queued, params={"x": [1, 2]}))
            await session.commit()
        for key, data in objects.items():
            await services.storage.put(key, data)

    in_app(client, insert, app_services(client))
    return objects


def empty_target(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    """Settings for an empty database (and, embedded, an empty storage directory)."""
    if BACKEND == "served":
        url = create_pg_database(f"worldbase_restore_{os.getpid()}")
        return make_settings(database_url=url, worldbase_data_dir=tmp_path / "restored")
    return make_settings(worldbase_data_dir=tmp_path / "restored")


async def emails(settings: Settings) -> list[str | None]:
    db = Database(settings, pooled=False)
    try:
        async with db.sessionmaker() as session:
            return list((await session.execute(select(User.email).order_by(User.email))).scalars())
    finally:
        await db.dispose()


async def read_objects(settings: Settings, keys: list[str]) -> dict[str, bytes]:
    storage = create_storage(settings)
    try:
        return {key: await storage.get(key) for key in keys}
    finally:
        await storage.close()


def read_manifest(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        return json.loads(member.read())


def test_backup_and_restore_into_empty_database(
    client: TestClient, settings: Settings, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    prefix = f"backup-{uuid.uuid4().hex[:8]}"
    objects = seed(client, prefix)

    path = asyncio.run(create_backup(settings))
    assert path.parent == settings.backups_path
    assert path.name.startswith("worldbase-") and path.name.endswith("Z.tar.gz")
    manifest = read_manifest(path)
    assert manifest["database_backend"] == ("postgresql" if BACKEND == "served" else "sqlite")
    assert manifest["alembic_revision"]
    assert manifest["row_counts"]["users"] == 3
    assert manifest["row_counts"]["jobs"] == 2
    listed = {o["key"]: o for o in manifest["objects"] if o["key"].startswith(prefix)}
    assert {k: v["size"] for k, v in listed.items()} == {k: len(v) for k, v in objects.items()}
    assert all(entry["etag"] for entry in listed.values())
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
    archived = {f"storage/{key}" for key in objects}
    # Stored objects travel in the archive on both backends (BACKUP_OBJECTS is on).
    assert archived <= names and manifest["objects_archived"] is True

    target = empty_target(make_settings, tmp_path)
    report = asyncio.run(restore_backup(target, path))
    assert report.row_counts == manifest["row_counts"]
    assert report.missing_objects == []
    assert asyncio.run(emails(target)) == [f"u{i}@example.com" for i in range(3)]
    assert asyncio.run(read_objects(target, list(objects))) == objects

    # The target now holds data: a second restore is refused unless forced.
    with pytest.raises(RestoreRefused) as refused:
        asyncio.run(restore_backup(target, path))
    assert "users" in refused.value.detail["tables_with_rows"]
    forced = asyncio.run(restore_backup(target, path, force=True))
    assert forced.row_counts == manifest["row_counts"]


def test_restore_reports_objects_missing_from_storage(
    client: TestClient, settings: Settings, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    prefix = f"backup-{uuid.uuid4().hex[:8]}"
    objects = seed(client, prefix)
    path = asyncio.run(create_backup(settings))
    gone = f"{prefix}/hello.txt"
    in_app(client, app_services(client).storage.delete, gone)
    target = empty_target(make_settings, tmp_path)
    report = asyncio.run(restore_backup(target, path))
    assert report.row_counts["users"] == 3
    # Stored objects travel inside the archive: the deleted one comes back.
    assert report.missing_objects == []
    assert asyncio.run(read_objects(target, list(objects))) == objects


@pytest.mark.skipif(BACKEND != "served", reason="objects outside the archive: S3 only")
def test_backup_without_objects_lists_them_and_reports_the_gone(
    client: TestClient, settings: Settings, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    prefix = f"backup-{uuid.uuid4().hex[:8]}"
    objects = seed(client, prefix)
    path = asyncio.run(create_backup(make_settings(backup_objects=False)))
    manifest = read_manifest(path)
    assert manifest["objects_archived"] is False
    with tarfile.open(path) as tar:
        assert not {f"storage/{key}" for key in objects} & set(tar.getnames())
    gone = f"{prefix}/hello.txt"
    in_app(client, app_services(client).storage.delete, gone)
    report = asyncio.run(restore_backup(empty_target(make_settings, tmp_path), path))
    # S3 objects stayed in the bucket; the restore reports the one that is gone.
    assert report.missing_objects == [gone]


def test_restore_checks_row_counts_against_manifest(
    client: TestClient, settings: Settings, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    seed(client, f"backup-{uuid.uuid4().hex[:8]}")
    path = asyncio.run(create_backup(settings))
    # Rewrite the archive with a manifest that claims one more user than the dump holds.
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(path) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member)
            if member.name == "manifest.json":
                assert data is not None
                manifest = json.loads(data.read())
                manifest["row_counts"]["users"] += 1
                raw = json.dumps(manifest).encode()
                member.size = len(raw)
                data = io.BytesIO(raw)
            dst.addfile(member, data)
    with pytest.raises(BackupError, match="row counts differ") as error:
        asyncio.run(restore_backup(empty_target(make_settings, tmp_path), tampered))
    assert error.value.detail == {"users": [4, 3]}


def test_unreadable_backup_files_are_clear_errors(settings: Settings, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"this is not a backup at all")
    with pytest.raises(BackupError, match="not a readable Worldbase backup"):
        asyncio.run(restore_backup(settings, garbage))

    truncated = tmp_path / "truncated.tar.gz"
    with tarfile.open(truncated, "w:gz") as tar:
        info = tarfile.TarInfo("database.sqlite3")
        info.size = 4096
        tar.addfile(info, io.BytesIO(os.urandom(4096)))
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(BackupError, match="not a readable Worldbase backup"):
        asyncio.run(restore_backup(settings, truncated))

    no_manifest = tmp_path / "no-manifest.tar.gz"
    with tarfile.open(no_manifest, "w:gz") as tar:
        info = tarfile.TarInfo("notes.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(BackupError, match="no valid manifest"):
        asyncio.run(restore_backup(settings, no_manifest))

    with pytest.raises(BackupError, match="does not exist"):
        asyncio.run(restore_backup(settings, tmp_path / "missing.tar.gz"))


def test_restore_refuses_a_backup_of_the_other_backend(
    client: TestClient, settings: Settings, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    path = asyncio.run(create_backup(settings))
    if BACKEND == "served":
        other = make_settings(database_url=None, worldbase_data_dir=tmp_path / "sqlite")
    else:
        other = make_settings(database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(BackupError, match="the target is"):
        asyncio.run(restore_backup(other, path))


def test_prune_removes_old_backups_but_keeps_the_newest(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(backup_dir=tmp_path / "b", backup_retention_days=7)
    settings.backups_path.mkdir(parents=True)
    now = time.time()
    ages = {"20240101T000000Z": 30, "20240201T000000Z": 10, "20240301T000000Z": 1}
    paths = {}
    for stamp, days in ages.items():
        path = settings.backups_path / f"worldbase-{stamp}.tar.gz"
        path.write_bytes(b"x")
        os.utime(path, (now - days * 86400, now - days * 86400))
        paths[days] = path
    unrelated = settings.backups_path / "notes.txt"
    unrelated.write_text("keep me")
    os.utime(unrelated, (now - 90 * 86400, now - 90 * 86400))

    assert prune_backups(settings) == [paths[30], paths[10]]
    assert list_backups(settings) == [paths[1]]
    assert unrelated.exists()

    # Ten days later the only backup is old too, but the newest one always stays.
    assert prune_backups(settings, now=now + 10 * 86400) == []
    assert paths[1].exists()

    keep_all = make_settings(backup_dir=tmp_path / "b", backup_retention_days=0)
    old = settings.backups_path / "worldbase-20200101T000000Z.tar.gz"
    old.write_bytes(b"x")
    os.utime(old, (now - 900 * 86400, now - 900 * 86400))
    assert prune_backups(keep_all) == []
    assert old.exists()
