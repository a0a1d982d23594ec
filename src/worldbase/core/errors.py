"""Domain exceptions and the one table that maps them to HTTP status codes and the error shape.

Every error a client sees looks like
`{"status": "error", "code": 404, "message": "Image not found", "detail": ...}`,
which both FastAPI-style clients (`detail`) and seed-002 clients (`status/code/message`) read.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("worldbase.errors")


class DomainError(Exception):
    """Base of the errors services raise; never an HTTPException."""

    status_code = 400

    def __init__(self, message: str, *, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.headers = headers


class BadInput(DomainError):
    status_code = 422


class NotAuthenticated(DomainError):
    status_code = 401

    def __init__(self, message: str = "Not authenticated", **kwargs: Any):
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class PayloadTooLarge(DomainError):
    status_code = 413


class RateLimited(DomainError):
    status_code = 429


class UpstreamError(DomainError):
    status_code = 502


class UpstreamTimeout(DomainError):
    status_code = 504


# Seconds a client should wait before retrying a 503 of an outage (`core.outages`): the
# parts (database, Redis, object store) restart in seconds.
UNAVAILABLE_RETRY_AFTER_SECONDS = 3


class ServiceUnavailable(DomainError):
    """503: a part is unreachable (`core.outages.unavailable` adds Retry-After) or a
    feature is not configured (no Retry-After: waiting will not fix it)."""

    status_code = 503


class ErrorRead(BaseModel):
    """The one error shape (OpenAPI documents every 4xx/5xx with it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "error", "code": 404, "message": "Not found", "detail": None},
                {
                    "status": "error",
                    "code": 422,
                    "message": "Invalid request: body.email",
                    "detail": [
                        {
                            "loc": ["body", "email"],
                            "msg": "value is not a valid email address",
                            "type": "value_error",
                        }
                    ],
                },
            ]
        }
    )

    status: str = "error"
    code: int
    message: str
    detail: Any = None


# Added to every route: FastAPI's own 422 schema is replaced by ours.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorRead, "description": "Invalid input; `detail` lists the fields"},
    "4XX": {"model": ErrorRead, "description": "Client error in the one error shape"},
    "5XX": {"model": ErrorRead, "description": "Server or upstream error; no internals"},
}


def error_body(code: int, message: str, detail: Any = None) -> dict[str, Any]:
    return {"status": "error", "code": code, "message": message, "detail": detail}


def error_response(
    code: int, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, detail), status_code=code, headers=headers)


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: echoing the rejected input could leak secrets.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.detail, exc.headers)

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        # Only hostile input nests past Python's recursion limit (`[[[[…` bodies through
        # any JSON decoder, deep GeoJSON): the request is refused, not the server broken.
        return error_response(
            422, "Input nested too deeply", {"reason": "nesting exceeds the decoder's depth"}
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = _validation_detail(exc)
        fields = ", ".join(".".join(str(p) for p in d["loc"]) for d in detail)
        return error_response(422, f"Invalid request: {fields}", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI turns any error raised while reading the body into a 400; the body-size cap
        # raises PayloadTooLarge from there, and that status is the one to keep.
        if isinstance(exc.__cause__, DomainError):
            cause = exc.__cause__
            return error_response(cause.status_code, cause.message, cause.detail, cause.headers)
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        if exc.status_code == 404 and message == "Not Found":
            message = "Not found"
        return error_response(exc.status_code, message, None, getattr(exc, "headers", None))
