"""create_app(settings) -> FastAPI: core middleware, core routes and the enabled apps' routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from worldbase import __version__
from worldbase.apps import registry
from worldbase.core import offload
from worldbase.core.api.auth import router as auth_router
from worldbase.core.api.jobs import router as jobs_router
from worldbase.core.api.meta import router as meta_router
from worldbase.core.api.webhooks import router as webhooks_router
from worldbase.core.appspec import AppSpec
from worldbase.core.docs import install_offline_docs
from worldbase.core.errors import ERROR_RESPONSES, install_error_handlers
from worldbase.core.fast_lane import FastLaneMiddleware, start_listener, stop_listener
from worldbase.core.hosts import TrustedHostsMiddleware
from worldbase.core.http import RequestContextMiddleware, configure_logging
from worldbase.core.input_checks import refuse_nul_characters
from worldbase.core.redact import install_redaction
from worldbase.core.services import Services
from worldbase.core.viewer import install_viewer
from worldbase.env_names import warn_unknown_variables
from worldbase.geo.cog_router import router as cog_router
from worldbase.settings import Settings, get_settings

log = logging.getLogger("worldbase")

# The core's routers: (router, prefix, tags); the apps' come from their specs.
CORE_ROUTERS: list[tuple[APIRouter, str, list[str]]] = [
    (meta_router, "", ["meta"]),
    (auth_router, "/api/auth", ["auth"]),
    (webhooks_router, "/api/webhooks", ["auth"]),
    (jobs_router, "/api/jobs", ["jobs"]),
    # TiTiler-compatible COG endpoints (any allow-listed COG; samsyn and habitats use them).
    (cog_router, "/cog", ["cog"]),
]


def create_app(
    settings: Settings | None = None, apps: Sequence[AppSpec] = registry.APPS
) -> FastAPI:
    """The API with the apps of `apps` that WORLDBASE_APPS enables."""
    settings = settings or get_settings()
    settings.check()
    settings, specs = registry.configure(settings, apps)
    install_redaction()  # whoever configured logging, no credential reaches a log line

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.start(settings)
        app.state.services = services
        app.state.db = services.db
        invalidations = start_listener(services.hub)
        try:
            yield
        finally:
            await stop_listener(invalidations)
            await services.stop()
            offload.shutdown()

    app = FastAPI(
        title="Worldbase",
        version=__version__,
        description=(
            "One backend for map, game and 3D-asset apps: habitats, SamSyn, D&D images, "
            "OSM tracking and the bestiary, on a shared core. Errors always have the shape "
            '`{"status": "error", "code": 404, "message": "...", "detail": ...}`.'
        ),
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_characters)],
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_offline_docs(app)
    install_viewer(app)
    # Innermost of the three: CORS headers and X-Request-ID still go on fast-lane answers.
    app.add_middleware(
        FastLaneMiddleware,
        max_bytes=settings.worldbase_fast_lane_mb * 1024 * 1024,
        ttl=settings.worldbase_fast_lane_ttl,
    )
    # CORS_ORIGINS, plus the usual local frontend dev servers in development.
    origins = settings.cors_allowed_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials="*" not in origins,
            allow_methods=["*"],
            allow_headers=["*"],
            # X-Total-Count and Link: the paging of lists answered as plain arrays.
            expose_headers=["X-Request-ID", "ETag", "Retry-After", "X-Total-Count", "Link"],
        )
    if settings.allowed_hosts:
        app.add_middleware(TrustedHostsMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.worldbase_max_body_bytes)

    for router, prefix, tags in CORE_ROUTERS:
        app.include_router(router, prefix=prefix, tags=list(tags), responses=ERROR_RESPONSES)
    for spec in specs:
        for router in spec.routers:
            app.include_router(router, tags=[spec.name], responses=ERROR_RESPONSES)
    return app


def create_app_from_env() -> FastAPI:
    """Uvicorn factory used by `worldbase serve` (also with --workers)."""
    settings = get_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    warn_unknown_variables()
    return create_app(settings)
