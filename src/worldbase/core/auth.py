"""Identity: access tokens, bearer-token verification and the user dependencies (password
hashing is in `users`, with the accounts).

Three kinds of bearer token are accepted, each with an explicit algorithm list:
1. our own access tokens (HS256 with the server secret, `iss="worldbase"`, `sub` = user id);
2. external HS256 tokens signed with `JWT_SECRET` (seed 000's game tokens): `sub` is an
   external subject, and its user is provisioned on first sight (`clerk_id=sub`);
3. asymmetric tokens (RS256, ES256, ...) verified against `JWKS_URL` (Clerk), with
   `JWT_ISSUER` / `JWT_AUDIENCE` checked when set; their users are provisioned the same way.
The header's `alg` only chooses the branch; each branch accepts only its own algorithms, and a
JWKS key must be of the header's algorithm, so a public key is never used as an HMAC secret.

One parser reads the `Authorization` header (`bearer_token`). Most routes then check the
account on every request (`CurrentUser`, `OptionalUser`). Tile routes, which must cost no
query when the tile is cached, use `TokenHolder`: an active account's verified token is
remembered in the core cache (memory, or Redis shared by every worker) for
`VERIFIED_TTL_SECONDS` at most, never past its `exp`, under a key that names the account
(`users.verified_tokens_prefix`); disabling or deleting an account drops its keys in the
same call (`users.deactivate`, `users.delete`, `users.update`), so it loses tile access at
once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from worldbase.core import users
from worldbase.core.cache import Cache
from worldbase.core.db import Database, Session
from worldbase.core.errors import Conflict, Forbidden, NotAuthenticated
from worldbase.core.models import User
from worldbase.core.realtime import Hub
from worldbase.core.schemas import web_url_or_none
from worldbase.settings import Settings

log = logging.getLogger("worldbase.auth")

ISSUER = "worldbase"
ACCESS_ALGORITHM = "HS256"
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Clock skew tolerated for tokens minted by another server.
EXTERNAL_LEEWAY_SECONDS = 10
INVALID_CREDENTIALS = "Incorrect email or password"
# How long `TokenHolder` trusts a verified token without a query (deactivation drops it).
VERIFIED_TTL_SECONDS = 30


async def authenticate_password(session: AsyncSession, *, email: str, password: str) -> User:
    """The user with these credentials; one message for unknown email and wrong password."""
    user = await users.get_by_email(session, email=email)
    valid, new_hash = await asyncio.to_thread(
        users.verify_and_update, password, user.password_hash if user else None
    )
    if user is None or not valid:
        raise NotAuthenticated(INVALID_CREDENTIALS)
    if not user.is_active:
        raise Forbidden("This account is disabled")
    if new_hash is not None:
        # The hashing parameters were raised since this hash was made: upgrade it now.
        user.password_hash = new_hash
        await session.commit()
    return user


# --- Our own access tokens ---------------------------------------------------------------------


def create_access_token(*, user: User, settings: Settings) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user.id),
        "iss": ISSUER,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=settings.jwt_expire_minutes),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.secret, algorithm=ACCESS_ALGORITHM)


# --- Verifying bearer tokens ---------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedToken:
    """What a verified token says: our user id, or an external subject with its profile."""

    user_id: uuid.UUID | None = None
    subject: str | None = None
    email: str | None = None
    name: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    avatar_url: str | None = None
    is_admin: bool | None = None  # what the token says of admin rights; None: it is silent


async def verify_token(token: str, *, settings: Settings) -> VerifiedToken:
    """Verify signature, algorithm and claims; anything wrong is `NotAuthenticated`."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise NotAuthenticated("Invalid token") from exc
    algorithm = header.get("alg")
    if algorithm in HMAC_ALGORITHMS:
        return _verify_hmac(token, algorithm, settings)
    if algorithm in ASYMMETRIC_ALGORITHMS:
        return await _verify_jwks(token, algorithm, settings)
    raise NotAuthenticated("Token algorithm is not accepted")


def _verify_hmac(token: str, algorithm: str, settings: Settings) -> VerifiedToken:
    accepted = {ACCESS_ALGORITHM, settings.jwt_algorithm} & HMAC_ALGORITHMS
    if algorithm not in accepted:
        raise NotAuthenticated("Token algorithm is not accepted")
    try:
        # Seed 000's game tokens carry `sub` and maybe `exp` (checked when present), no `aud`.
        claims = jwt.decode(
            token,
            settings.secret,
            algorithms=[algorithm],
            # PyJWT refuses a non-string `sub`; game servers often sign an integer player id,
            # so `sub` is checked (and an integer turned into its string) by `_subject`.
            options={"require": ["sub"], "verify_aud": False, "verify_sub": False},
            leeway=EXTERNAL_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("Token has expired") from exc
    except jwt.PyJWTError as exc:
        raise NotAuthenticated("Invalid token") from exc
    if claims.get("iss") != ISSUER:
        return _external(claims, settings)
    if algorithm != ACCESS_ALGORITHM or claims.get("typ") != "access" or "exp" not in claims:
        raise NotAuthenticated("Invalid token")
    if not isinstance(claims["sub"], str):
        raise NotAuthenticated("Invalid token")
    try:
        return VerifiedToken(user_id=uuid.UUID(claims["sub"]))
    except ValueError as exc:
        raise NotAuthenticated("Invalid token") from exc


_jwks_clients: dict[str, jwt.PyJWKClient] = {}
_jwks_lock = threading.Lock()


def _jwks_client(url: str) -> jwt.PyJWKClient:
    # One client per URL for the process: it caches the key set for 5 minutes and refetches
    # early (at most every 30 s) when a token names an unknown `kid`, i.e. after a rotation.
    with _jwks_lock:
        client = _jwks_clients.get(url)
        if client is None:
            client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=300, timeout=5)
            _jwks_clients[url] = client
        return client


async def _verify_jwks(token: str, algorithm: str, settings: Settings) -> VerifiedToken:
    if not settings.jwks_url:
        raise NotAuthenticated(f"{algorithm} tokens are not accepted: JWKS_URL is not configured")
    client = _jwks_client(settings.jwks_url)
    try:
        # urllib fetches synchronously: keep it off the event loop.
        key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
    except jwt.PyJWKClientConnectionError as exc:
        log.warning("cannot fetch JWKS from %s: %s", settings.jwks_url, exc)
        raise NotAuthenticated("Cannot reach the identity provider's signing keys") from exc
    except jwt.PyJWTError as exc:
        raise NotAuthenticated("No signing key matches this token") from exc
    if key.algorithm_name != algorithm:
        raise NotAuthenticated("Token algorithm does not match its signing key")
    required = ["exp", "sub"]
    if settings.jwt_issuer:
        required.append("iss")
    if settings.jwt_audience:
        required.append("aud")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            issuer=settings.jwt_issuer or None,
            audience=settings.jwt_audience or None,
            options={
                "require": required,
                "verify_aud": bool(settings.jwt_audience),
                "verify_sub": False,  # checked by `_subject`, which also takes an integer
            },
            leeway=EXTERNAL_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("Token has expired") from exc
    except jwt.PyJWTError as exc:
        raise NotAuthenticated("Invalid token") from exc
    return _external(claims, settings)


def _subject(value: object) -> str:
    """An external token's `sub` as text: a string, or an integer (seed 000's game servers
    sign the player's numeric id) turned into its decimal string; anything else is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > 255:
        raise NotAuthenticated("Invalid token")
    return value


def _external(claims: dict[str, Any], settings: Settings) -> VerifiedToken:
    subject = _subject(claims.get("sub"))

    def text(*names: str) -> str | None:
        for name in names:
            value = claims.get(name)
            if isinstance(value, str) and value:
                return value
        return None

    username = text("username", "preferred_username")
    first_name = text("first_name", "given_name")
    last_name = text("last_name", "family_name")
    return VerifiedToken(
        subject=subject,
        email=text("email", "email_address"),
        name=text("name", "full_name") or users.display_name(first_name, last_name, username),
        username=username,
        first_name=first_name,
        last_name=last_name,
        avatar_url=text("picture", "image_url", "avatar_url"),
        is_admin=users.admin_claim(claims, settings.jwt_admin_claim),
    )


async def authenticate_token(
    session: AsyncSession, *, token: str, settings: Settings, hub: Hub | None = None
) -> User:
    """The active user a bearer token stands for (also for WebSockets, which pass it as a query).

    An external token that speaks of admin rights (`JWT_ADMIN_CLAIM`, Clerk's
    `public_metadata.isAdmin`) sets them: `true` grants, anything else in that metadata
    revokes (the `hub` closes the sockets the account no longer may hold). A token silent on
    them (no such metadata) leaves the stored flag as the webhook or the CLI set it."""
    verified = await verify_token(token, settings=settings)
    if verified.user_id is not None:
        user = await users.get(session, user_id=verified.user_id)
        if user is None:
            raise NotAuthenticated("Invalid token")
    else:
        assert verified.subject is not None
        user = await users.get_by_subject(session, subject=verified.subject)
        if user is None:
            user = await users.upsert_from_claims(
                session,
                subject=verified.subject,
                email=verified.email,
                name=_bounded(verified.name, 255),
                username=_bounded(verified.username, 255),
                first_name=_bounded(verified.first_name, 255),
                last_name=_bounded(verified.last_name, 255),
                avatar_url=web_url_or_none(verified.avatar_url),
                is_admin=verified.is_admin,
            )
    if not user.is_active:
        raise Forbidden("This account is disabled")
    if verified.is_admin is not None and verified.is_admin != user.is_admin:
        await users.set_admin(session, user=user, is_admin=verified.is_admin, hub=hub)
    return user


def _bounded(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else value[:limit]


# --- FastAPI dependencies ----------------------------------------------------------------------

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer <token>` from /api/auth/login or your identity provider",
)


async def _settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


async def bearer_token(
    connection: HTTPConnection,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str | None:
    """The bearer token, or None when no Authorization header was sent; another scheme is 401."""
    if credentials is None:
        if connection.headers.get("authorization"):
            raise NotAuthenticated("Authorization header must be 'Bearer <token>'")
        return None
    return credentials.credentials


BearerToken = Annotated[str | None, Depends(bearer_token)]


async def optional_user(
    connection: HTTPConnection,
    session: Session,
    settings: Annotated[Settings, Depends(_settings)],
    token: BearerToken,
) -> User | None:
    """The caller, or None when no Authorization header was sent; a bad token is still 401."""
    if token is None:
        return None
    hub: Hub = connection.app.state.services.hub
    return await authenticate_token(session, token=token, settings=settings, hub=hub)


async def _cache(connection: HTTPConnection) -> Cache:
    cache: Cache = connection.app.state.services.cache
    return cache


async def token_holder(
    session: Session,
    settings: Annotated[Settings, Depends(_settings)],
    cache: Annotated[Cache, Depends(_cache)],
    token: BearerToken,
) -> None:
    """401/403 unless the token stands for an active account; verified tokens are cached
    (see the module docstring), so a repeated request costs no query."""
    if token is None:
        raise NotAuthenticated("Not authenticated")
    identity = _unverified_identity(token)
    key = None
    if identity is not None:
        digest = hashlib.blake2b(token.encode(), digest_size=20).hexdigest()
        key = users.verified_tokens_prefix(identity) + digest
        if await cache.get(key) is not None:
            return
    user = await authenticate_token(session, token=token, settings=settings)
    # Only under a prefix that dropping this account's tokens removes.
    if key is None or identity not in (str(user.id), user.clerk_id):
        return
    ttl = VERIFIED_TTL_SECONDS
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    if isinstance(exp, int | float):
        ttl = min(ttl, int(exp - time.time()))
    if ttl > 0:
        await cache.set(key, b"1", ttl=ttl)


def _unverified_identity(token: str) -> str | None:
    # The key names the account the token claims; an entry exists only for this exact token,
    # written after it was verified, so trusting the claim here is safe.
    try:
        subject = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.PyJWTError:
        return None
    if isinstance(subject, int) and not isinstance(subject, bool):
        subject = str(subject)
    return subject if isinstance(subject, str) and subject else None


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise NotAuthenticated("Not authenticated")
    return user


async def require_admin(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Administrator rights required")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
AdminUser = Annotated[User, Depends(require_admin)]
TokenHolder = Annotated[None, Depends(token_holder)]


# --- Start-up ----------------------------------------------------------------------------------


async def ensure_admin(db: Database, settings: Settings) -> None:
    """Create the admin named by WORLDBASE_ADMIN_EMAIL/PASSWORD, or reset its password and flag."""
    email = users.normalize_email(settings.worldbase_admin_email)
    password = settings.worldbase_admin_password
    if not email or not password:
        if email or password:
            log.warning("WORLDBASE_ADMIN_EMAIL and WORLDBASE_ADMIN_PASSWORD must both be set")
        return
    async with db.sessionmaker() as session:
        user = await users.get_by_email(session, email=email)
        if user is None:
            try:
                await users.create(session, email=email, password=password, is_admin=True)
                log.info("created admin user %s", email)
                return
            except Conflict:
                # Another worker process created it at the same moment: update that one.
                user = await users.get_by_email(session, email=email)
                if user is None:
                    raise
        same_password = await asyncio.to_thread(users.verify_password, password, user.password_hash)
        if not (same_password and user.is_admin and user.is_active):
            changes: dict[str, Any] = {} if same_password else {"password": password}
            await users.update(session, user=user, is_admin=True, is_active=True, **changes)
            log.info("updated admin user %s", email)
