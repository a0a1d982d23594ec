"""`/`, `/health` and `/metrics` on the current backend, and with a dead database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import BACKEND
from worldbase import __version__
from worldbase.apps import registry
from worldbase.core import health
from worldbase.core.metrics import TILE_CACHE
from worldbase.core.models import Job, JobStatus
from worldbase.settings import Settings

DEAD_DATABASE = "postgresql://postgres@127.0.0.1:1/nowhere"


def app_services(client: TestClient) -> Any:
    app: Any = client.app
    return app.state.services


def in_app(client: TestClient, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run `fn(*args)` on the app's own event loop."""
    assert client.portal is not None
    return client.portal.call(fn, *args)


def add_jobs(client: TestClient, *statuses: tuple[JobStatus, timedelta]) -> None:
    async def insert(services: Any) -> None:
        async with services.db.sessionmaker() as session:
            for status, age in statuses:
                when = datetime.now(UTC) - age
                session.add(
                    Job(
                        id=uuid.uuid4(),
                        kind="test",
                        status=status,
                        created_at=when,
                        updated_at=when,
                    )
                )
            await session.commit()

    in_app(client, insert, app_services(client))


def test_health_reports_stuck_jobs_as_degraded(client: TestClient) -> None:
    """A job queued past the grace period, or running without a heartbeat, is stuck."""
    add_jobs(
        client,
        (JobStatus.queued, timedelta(0)),
        (JobStatus.queued, timedelta(hours=2)),
        (JobStatus.running, timedelta(hours=1)),
        (JobStatus.failed, timedelta(0)),
    )
    body = client.get("/health").json()
    jobs = body["checks"]["jobs"]
    assert jobs["status"] == "degraded"
    assert (jobs["queued"], jobs["stuck_queued"]) == (2, 1)
    assert (jobs["running"], jobs["stuck_running"]) == (1, 1)
    assert jobs["failed"] == 1
    assert body["status"] == "degraded"


def test_api_info_keeps_seed_keys_and_links(client: TestClient, settings: Settings) -> None:
    response = client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Worldbase API"
    assert body["version"] == __version__
    assert body["docs"] == "/docs"
    assert body["redoc"] == "/redoc"
    assert body["health"] == "/health"
    assert body["metrics"] == "/metrics"
    assert body["apps"] == [spec.name for spec in registry.enabled(settings)]
    # The links it advertises are real.
    for link in ("/docs", "/redoc", "/health", "/metrics"):
        assert client.get(link).status_code == 200, link


def test_health_ok_shape(client: TestClient) -> None:
    add_jobs(
        client,
        (JobStatus.queued, timedelta(0)),
        (JobStatus.queued, timedelta(minutes=2)),
        (JobStatus.running, timedelta(0)),
        (JobStatus.failed, timedelta(hours=1)),
        (JobStatus.failed, timedelta(days=3)),
        (JobStatus.succeeded, timedelta(0)),
    )
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    checks = body["checks"]
    assert checks["database"] == "ok"
    assert checks["storage"] == "ok"
    assert set(checks["disk_space"]) == {"status", "free_gb"}
    assert checks["disk_space"]["free_gb"] > 0
    assert checks["jobs"] == {
        "status": "ok",
        "queued": 2,
        "running": 1,
        "failed": 2,
        "failed_last_24h": 1,
        "stuck_queued": 0,
        "stuck_running": 0,
    }
    if BACKEND == "served":
        assert checks["redis"] == "ok"
    else:
        assert "redis" not in checks
    expected = "ok" if checks["disk_space"]["status"] == "ok" else "degraded"
    assert body["status"] == expected
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    # Apps with a health counter report under their name (dnd counts its images).
    assert body["apps"]["dnd"] == {"images": {"total": 0}}
    # Seed 002's document: the image count under `checks.images.total`.
    assert checks["images"] == {"total": 0}
    # Seed 000's monitors: `database` and `storage` booleans at the top level.
    assert body["database"] is True
    assert body["storage"] is True
    assert response.headers["cache-control"] == "no-store"


def test_health_counts_images_where_seed_002_shows_them(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shape is under test, not the bound: on a loaded CI machine one app's count can take
    # longer than the 2 s bound and would honestly answer `total: None` (as CI saw once).
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 60.0)
    generated = client.post(
        "/api/v1/images/generate",
        json={"subject_type": "item", "subject_name": "Dagger", "prompt": "A plain dagger"},
    )
    assert generated.status_code == 201, generated.text
    body = client.get("/health").json()
    # Seed 002's expected response, key for key (plus our additions).
    assert {"status", "timestamp", "checks"} <= set(body)
    assert {"database", "disk_space", "images"} <= set(body["checks"])
    assert body["checks"]["images"]["total"] == 1, body["checks"]["images"]
    assert body["apps"]["dnd"]["images"]["total"] == 1
    assert isinstance(body["checks"]["disk_space"]["free_gb"], float)


def test_health_without_dnd_has_no_image_check(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    body = app_factory(make_settings(worldbase_apps="osm")).get("/health").json()
    assert "images" not in body["checks"]
    assert body["database"] is True and body["storage"] is True


def test_low_disk_space_is_degraded_not_down(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "LOW_DISK_BYTES", 1 << 62)
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["disk_space"]["status"] == "warning"
    assert body["status"] == "degraded"


def test_app_counters_run_for_enabled_apps_only_and_are_bounded(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health, "_COUNTERS", {})
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.3)

    async def images(session: AsyncSession) -> dict[str, Any]:
        return {"images": 3}

    async def broken(session: AsyncSession) -> dict[str, Any]:
        raise RuntimeError("no such table: creatures\nsecond line with internals")

    async def slow(session: AsyncSession) -> dict[str, Any]:
        await asyncio.sleep(30)
        return {}

    client = app_factory(make_settings(worldbase_apps=["dnd", "bestiary", "osm"]))
    # After the app installed its apps' own counters: these replace them.
    health.register_health_counter("dnd", images)
    health.register_health_counter("bestiary", broken)
    health.register_health_counter("osm", slow)
    health.register_health_counter("samsyn", images)  # not enabled
    response = client.get("/health")
    assert response.status_code == 200
    apps = response.json()["apps"]
    assert apps == {
        "dnd": {"images": 3},
        "bestiary": {"status": "error: RuntimeError: no such table: creatures"},
        "osm": {"status": "error: timeout after 0.3s"},
    }


def test_counts_a_seed_reads_under_checks_keep_their_shape_when_the_counter_fails(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health, "_COUNTERS", {})

    async def broken(session: AsyncSession) -> dict[str, Any]:
        raise RuntimeError("no such table: image_assets")

    client = app_factory(make_settings(worldbase_apps=["dnd"]))
    health.register_health_counter("dnd", broken, checks=("images",))  # replaces dnd's own
    body = client.get("/health").json()
    assert body["checks"]["images"] == {
        "total": None,
        "status": "error: RuntimeError: no such table: image_assets",
    }
    assert body["status"] == "degraded"
    assert body["database"] is True


def test_dead_database_is_503_with_health_shape(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    # The app must start with its database down so /health can say so.
    client = app_factory(make_settings(database_url=DEAD_DATABASE))
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"] is False
    assert body["checks"]["database"].startswith("error: ")
    assert "Traceback" not in response.text
    assert "\n" not in body["checks"]["database"]
    assert body["checks"]["jobs"]["status"].startswith("error: ")
    assert body["checks"]["jobs"]["queued"] is None
    # Info and metrics still answer.
    assert client.get("/").status_code == 200
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "worldbase_database_up 0.0" in metrics.text


async def test_redis_check_reports_unreachable_server() -> None:
    result = await health.check_redis("redis://127.0.0.1:1/0")
    assert result.startswith("error: ")
    assert "\n" not in result


def test_metrics_have_request_latency_job_gauges_and_tile_cache(client: TestClient) -> None:
    add_jobs(client, (JobStatus.queued, timedelta(0)), (JobStatus.failed, timedelta(0)))
    assert client.get("/").status_code == 200
    TILE_CACHE.labels(layer_kind="raster", result="hit").inc()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'worldbase_request_seconds_count{method="GET",route="/",status="200"}' in text
    assert 'worldbase_jobs{status="queued"} 1.0' in text
    assert 'worldbase_jobs{status="failed"} 1.0' in text
    assert 'worldbase_jobs{status="running"} 0.0' in text
    assert "worldbase_database_up 1.0" in text
    assert 'worldbase_tile_cache_total{layer_kind="raster",result="hit"}' in text


def test_missing_bucket_is_a_storage_error(
    app_factory: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    s3_endpoint: str,
) -> None:
    # The S3 backend on moto's server in both runs, whatever the app's own storage is.
    client = app_factory(
        make_settings(
            storage_backend="s3",
            storage_bucket=f"missing-{uuid.uuid4().hex[:8]}",
            aws_endpoint_url=s3_endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
    )
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["storage"].startswith("error: ")
    assert body["checks"]["database"] == "ok"
    assert (body["database"], body["storage"]) == (True, False)
    assert body["status"] == "degraded"
