"""Prometheus metrics that are not about HTTP requests (those live in `core/http.py`).

Each process keeps its own registry: with several uvicorn workers every scrape sees one
worker only, unless `PROMETHEUS_MULTIPROC_DIR` names an (emptied at start) directory that
all workers share; `render_metrics` then aggregates the workers' files.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
)

from worldbase.core.models import JobStatus

# Tile caches call `TILE_CACHE.labels(layer_kind="raster", result="hit").inc()`.
TILE_CACHE = Counter(
    "worldbase_tile_cache_total",
    "Tile cache lookups by layer kind and result (hit|miss)",
    ["layer_kind", "result"],
)

# Set at scrape time from the `jobs` table, so every worker reports the same numbers.
JOBS = Gauge(
    "worldbase_jobs",
    "Jobs in the jobs table by status",
    ["status"],
    multiprocess_mode="mostrecent",
)
DATABASE_UP = Gauge(
    "worldbase_database_up",
    "1 when the last scrape could query the database, else 0",
    multiprocess_mode="mostrecent",
)

__all__ = ["CONTENT_TYPE_LATEST", "DATABASE_UP", "JOBS", "TILE_CACHE", "render_metrics"]


def set_job_counts(counts: dict[str, int] | None) -> None:
    """Record job counts by status; `None` means the database could not be read."""
    DATABASE_UP.set(0 if counts is None else 1)
    if counts is None:
        return
    for status in JobStatus:
        JOBS.labels(status=status.value).set(counts.get(status.value, 0))


def render_metrics() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
