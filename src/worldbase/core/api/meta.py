"""Core routes: API info (`/`), health (`/health`) and Prometheus metrics (`/metrics`).

All three are unauthenticated: they are for ops tooling and load balancers. `/metrics`
reveals route names and counts only; expose the server beyond loopback behind a proxy
that restricts it if that matters.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from worldbase import __version__
from worldbase.core import health, metrics
from worldbase.core.services import ServicesDep

router = APIRouter()


@router.get("/", summary="API info")
async def api_info(services: ServicesDep) -> dict[str, Any]:
    # Seed 002's keys (`message`, `version`, `docs`) first, then ours.
    return {
        "message": "Worldbase API",
        "name": "Worldbase",
        "version": __version__,
        "docs": "/docs",
        "redoc": "/redoc",
        "health": "/health",
        "metrics": "/metrics",
        "apps": list(services.settings.worldbase_apps),
    }


@router.get(
    "/health",
    summary="Health of the database, storage, disk, Redis and jobs",
    responses={503: {"description": "The database is unreachable (same document shape)"}},
)
async def get_health(services: ServicesDep) -> JSONResponse:
    document = await health.check_health(services=services)
    status_code = 503 if document["status"] == "error" else 200
    return JSONResponse(document, status_code=status_code, headers={"Cache-Control": "no-store"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def get_metrics(services: ServicesDep) -> Response:
    try:
        counts: dict[str, int] | None = await asyncio.wait_for(
            health.job_counts(services.db), health.CHECK_TIMEOUT_SECONDS
        )
    except Exception:
        counts = None  # reported as worldbase_database_up 0; the scrape itself succeeds
    metrics.set_job_counts(counts)
    return Response(metrics.render_metrics(), media_type=metrics.CONTENT_TYPE_LATEST)
