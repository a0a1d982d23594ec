"""Core routes under /api/auth: password registration and login, and the caller's own profile."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from worldbase.core import users
from worldbase.core.auth import CurrentUser, authenticate_password, create_access_token
from worldbase.core.db import Session
from worldbase.core.models import User
from worldbase.core.ratelimit import rate_limit
from worldbase.core.schemas import LoginRequest, TokenRead, UserCreate, UserRead, UserUpdate
from worldbase.settings import Settings

router = APIRouter()

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong email or password"},
    422: {"description": "Invalid fields, listed in `detail`"},
}


def _token(user: User, settings: Settings) -> TokenRead:
    return TokenRead(
        access_token=create_access_token(user=user, settings=settings),
        token_type="bearer",  # noqa: S106 - the OAuth2 token type, not a secret
        expires_in=settings.jwt_expire_minutes * 60,
        user=UserRead.model_validate(user),
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenRead,
    summary="Create a password account and log in",
    description=(
        "Sign-ups are rate limited per client (`REGISTER_RATE_LIMIT`); over the limit the "
        "answer is 429 with `Retry-After`."
    ),
    responses={
        409: {"description": "The email is already registered"},
        422: _ERRORS[422],
        429: {"description": "Too many sign-ups; see Retry-After"},
    },
    dependencies=[Depends(rate_limit("register", lambda s: s.register_rate_limit))],
)
async def register(body: UserCreate, session: Session, request: Request) -> TokenRead:
    user = await users.create(
        session, email=str(body.email), password=body.password, name=body.name
    )
    return _token(user, request.app.state.settings)


async def _login_body(request: Request) -> LoginRequest:
    """JSON `{email, password}` or the OAuth2 password form (`username`, `password`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_form = content_type in _FORM_TYPES
    data: Any
    if is_form:
        form = await request.form()
        # OAuth2 also sends grant_type, scope, client_id...: only these two matter here.
        data = {
            field: value
            for field, value in (
                ("email", form.get("username")),
                ("password", form.get("password")),
            )
            if isinstance(value, str)
        }
    else:
        try:
            data = json.loads(await request.body())
        except ValueError as exc:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": "Body is not valid JSON", "type": "json_invalid"}]
            ) from exc
    try:
        return LoginRequest.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = tuple("username" if is_form and part == "email" else part for part in err["loc"])
            errors.append({"loc": ("body", *loc), "msg": err["msg"], "type": err["type"]})
        raise RequestValidationError(errors) from exc


_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string", "description": "The account's email"},
                        "password": {"type": "string", "format": "password"},
                        "grant_type": {"type": "string", "enum": ["password"]},
                    },
                }
            },
        },
    }
}


@router.post(
    "/login",
    response_model=TokenRead,
    summary="Exchange email and password for an access token",
    description=(
        "Accepts JSON `{email, password}` or the OAuth2 password form "
        "(`username`, `password`), chosen by Content-Type. Attempts are rate limited per "
        "client (`LOGIN_RATE_LIMIT`); over the limit the answer is 429 with `Retry-After`."
    ),
    openapi_extra=_LOGIN_BODY,
    responses={**_ERRORS, 429: {"description": "Too many attempts; see Retry-After"}},
    dependencies=[Depends(rate_limit("login", lambda s: s.login_rate_limit))],
)
async def login(request: Request, session: Session) -> TokenRead:
    body = await _login_body(request)
    user = await authenticate_password(session, email=body.email, password=body.password)
    return _token(user, request.app.state.settings)


@router.get("/me", response_model=UserRead, summary="The caller's profile")
async def read_me(user: CurrentUser) -> User:
    return user


@router.patch(
    "/me",
    response_model=UserRead,
    summary="Change the caller's name or avatar",
    responses={422: _ERRORS[422]},
)
async def update_me(body: UserUpdate, user: CurrentUser, session: Session) -> User:
    changes = body.model_dump(include=body.model_fields_set)
    return await users.update(session, user=user, **changes)
