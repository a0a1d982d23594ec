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

INFO_EXAMPLE = {
    "message": "Worldbase API",
    "name": "Worldbase",
    "version": "0.1.0",
    "docs": "/docs",
    "redoc": "/redoc",
    "health": "/health",
    "metrics": "/metrics",
    "apps": ["habitats", "samsyn", "dnd", "osm", "bestiary"],
}
HEALTH_EXAMPLE = {
    "status": "ok",
    "database": True,
    "storage": True,
    "timestamp": "2026-11-23T05:44:17.351438+00:00",
    "version": "0.1.0",
    "checks": {
        "database": "ok",
        "storage": "ok",
        "disk_space": {"status": "ok", "free_gb": 78.25},
        "redis": "ok",
        "jobs": {"status": "ok", "queued": 0, "running": 1, "failed_last_24h": 0},
        "images": {"total": 12},
    },
    "apps": {"dnd": {"images": {"total": 12}}},
}


def _json_example(example: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": example}}}


@router.get(
    "/", summary="API info", responses={200: _json_example(INFO_EXAMPLE, "Name, version, links")}
)
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
    responses={
        200: _json_example(
            HEALTH_EXAMPLE, "Every check; `degraded` when one besides the database fails"
        ),
        503: _json_example(
            {
                **HEALTH_EXAMPLE,
                "status": "error",
                "database": False,
                "checks": {"database": "error: OSError: ..."},
            },
            "The database is unreachable (same document shape)",
        ),
    },
)
async def get_health(services: ServicesDep) -> JSONResponse:
    document = await health.check_health(services=services)
    status_code = 503 if document["status"] == "error" else 200
    return JSONResponse(document, status_code=status_code, headers={"Cache-Control": "no-store"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"example": 'worldbase_jobs{status="queued"} 0.0\n'}},
        }
    },
)
async def get_metrics(services: ServicesDep) -> Response:
    try:
        counts: dict[str, int] | None = await asyncio.wait_for(
            health.job_counts(services.db), health.CHECK_TIMEOUT_SECONDS
        )
    except Exception:
        counts = None  # reported as worldbase_database_up 0; the scrape itself succeeds
    metrics.set_job_counts(counts)
    return Response(metrics.render_metrics(), media_type=metrics.CONTENT_TYPE_LATEST)
