"""Maintenance: expired cache, orphaned images, stats, and the scheduled job."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.apps.dnd.conftest import generate, stored_keys
from tests.builders import run_db
from worldbase.apps.dnd import maintenance
from worldbase.apps.dnd.models import SceneCache
from worldbase.core.db import utcnow


def _storage_call(client: TestClient, method: str, *args: object, **kwargs: object) -> object:
    storage = client.app.state.services.storage  # type: ignore[attr-defined]
    return client.portal.call(lambda: getattr(storage, method)(*args, **kwargs))  # type: ignore[union-attr]


def test_expired_cache_cleanup(client: TestClient) -> None:
    for location in ("Tavern", "Forest"):
        client.post("/api/v1/scenes/generate", params={"location": location})

    async def expire(session):  # type: ignore[no-untyped-def]
        await session.execute(
            update(SceneCache)
            .where(SceneCache.location == "Forest")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()

    run_db(client, expire)
    response = client.post("/api/v1/maintenance/cleanup/expired-cache")
    assert response.status_code == 200 and response.json()["deleted"] == 1
    stats = client.get("/api/v1/scenes/cache/stats").json()
    assert stats["total_entries"] == 1 and stats["expired_entries"] == 0


def test_orphan_cleanup_removes_rows_without_files_and_old_stray_files(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = generate(client).json()
    lost = generate(client, prompt="A second longsword, lost on disk").json()
    deleted = generate(client, prompt="A third longsword, soft deleted").json()
    client.delete(f"/api/v1/images/{deleted['id']}")
    _storage_call(client, "delete", lost["storage_path_full"])
    _storage_call(client, "put", "dnd/images/full/stray.webp", b"RIFF....WEBP")

    url = "/api/v1/maintenance/cleanup/orphaned-images"
    dry = client.post(url, params={"dry_run": True}).json()
    # The stray file is younger than the grace period (it may be a generation in flight).
    assert (dry["rows_without_files"], dry["files_without_rows"], dry["rows_deleted"]) == (1, 0, 0)
    monkeypatch.setattr(maintenance, "ORPHAN_FILE_GRACE", timedelta(seconds=-60))
    result = client.post(url).json()
    assert result["rows_without_files"] == 1 and result["rows_deleted"] == 1
    assert result["files_without_rows"] == 1 and result["files_deleted"] == 2
    assert client.get(f"/api/v1/images/{lost['id']}").status_code == 404
    assert client.get(f"/api/v1/images/{keep['id']}").status_code == 200
    assert client.post(f"/api/v1/images/{deleted['id']}/restore").status_code == 200
    assert sorted(stored_keys(client)) == sorted(
        [
            keep["storage_path_full"],
            keep["storage_path_thumbnail"],
            deleted["storage_path_full"],
            deleted["storage_path_thumbnail"],
        ]
    )


def test_stats(client: TestClient) -> None:
    image = generate(client).json()
    client.put(f"/api/v1/images/{image['id']}/feature")
    client.post("/api/v1/scenes/generate", params={"location": "Tavern"})
    stats = client.get("/api/v1/maintenance/stats").json()
    assert stats["images"]["total"] == 2 and stats["images"]["featured"] == 1
    assert stats["images"]["by_type"] == {"scene": 1, "item": 1, "character": 0}
    assert stats["images"]["total_size_mb"] > 0
    assert stats["scene_cache"]["total_entries"] == 1
    assert stats["provider"] == "procedural"


def test_maintenance_job_runs_both_cleanups(client: TestClient) -> None:
    client.post("/api/v1/scenes/generate", params={"location": "Tavern"})

    async def expire(session):  # type: ignore[no-untyped-def]
        await session.execute(update(SceneCache).values(expires_at=utcnow() - timedelta(days=1)))
        await session.commit()

    run_db(client, expire)
    jobs = client.app.state.services.jobs  # type: ignore[attr-defined]
    job = client.portal.call(lambda: jobs.enqueue(kind="dnd.maintenance", params={}))  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        current = client.portal.call(jobs.get, job.id)  # type: ignore[union-attr]
        if current.status in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert current.status == "succeeded", current.error
    assert current.result["expired_cache_deleted"] == 1
    assert current.result["orphans"]["rows_deleted"] == 0


def test_maintenance_is_scheduled_once_a_day(client: TestClient) -> None:
    from sqlalchemy import func, select

    from worldbase.apps.dnd.jobs import MAINTENANCE_KIND, schedule_maintenance
    from worldbase.core.job_worker import JobScheduler
    from worldbase.core.models import Job

    runtime = client.app.state.services.jobs  # type: ignore[attr-defined]
    scheduler = JobScheduler(runtime, runtime.db)

    async def count(session):  # type: ignore[no-untyped-def]
        return await session.scalar(
            select(func.count()).select_from(Job).where(Job.kind == MAINTENANCE_KIND)
        )

    client.portal.call(schedule_maintenance, scheduler)  # type: ignore[union-attr]
    assert run_db(client, count) == 1  # nothing ran before: due now
    client.portal.call(schedule_maintenance, scheduler)  # type: ignore[union-attr]
    assert run_db(client, count) == 1  # ran less than a day ago: not again

    async def age(session):  # type: ignore[no-untyped-def]
        await session.execute(
            update(Job).values(created_at=utcnow() - timedelta(days=1, minutes=1))
        )
        await session.commit()

    run_db(client, age)
    client.portal.call(schedule_maintenance, scheduler)  # type: ignore[union-attr]
    assert run_db(client, count) == 2
