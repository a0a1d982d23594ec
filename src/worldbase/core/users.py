"""The users service: one `users` table for every app, whichever way a user came in.

Password users have an email and a password hash; users of an external identity provider
(Clerk, a game's own JWTs) are keyed by `clerk_id` (the token's `sub`) and provisioned on
first sight. An external identity is never linked to an existing account by email alone:
the provider's email may be unverified, and linking would hand that account over.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.core.cache import Cache
from worldbase.core.errors import Conflict, NotFound
from worldbase.core.models import User
from worldbase.core.realtime import Hub, announce_access_change, user_channel

_UNSET: Any = object()
log = logging.getLogger("worldbase.auth")  # the password checks log as auth did

# Argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane): ~60 ms. pwdlib's
# `recommended()` (64 MiB, 3 passes, 4 lanes) costs 0.3-0.4 s of CPU per login on a 2-core
# machine, which turns login into a denial-of-service lever. Older hashes are upgraded on login.
_password_hash = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19 * 1024, parallelism=1),))


# --- Passwords -------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """Argon2id hash (blocking, tens of milliseconds: call it in a thread from async code)."""
    return _password_hash.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when the password matches; a missing hash still costs one verification."""
    if not password_hash:
        _password_hash.verify(password, _dummy_hash())
        return False
    try:
        return _password_hash.verify(password, password_hash)
    except Exception:  # a corrupt or foreign hash format is a failed login, not a 500
        log.warning("unreadable password hash")
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verified against when the email is unknown, so both answers take about as long.
    return _password_hash.hash(uuid.uuid4().hex)


def verify_and_update(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    if not password_hash:
        return verify_password(password, None), None
    try:
        return _password_hash.verify_and_update(password, password_hash)
    except Exception:
        log.warning("unreadable password hash")
        return False, None


def verified_tokens_prefix(identity: str) -> str:
    """Where `auth.TokenHolder` caches the verified tokens of an account (its id or, for an
    external identity, its subject)."""
    return f"auth:verified:{identity}:"


async def _forget_verified_tokens(cache: Cache, *, user_id: uuid.UUID, subject: str | None) -> None:
    for identity in (str(user_id), subject):
        if identity:
            await cache.delete_prefix(verified_tokens_prefix(identity))


def normalize_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip().lower()
    return email or None


async def _hash(password: str | None) -> str | None:
    # Argon2 takes tens of milliseconds of CPU: keep it off the event loop.
    return None if password is None else await asyncio.to_thread(hash_password, password)


async def get(session: AsyncSession, *, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_active(session: AsyncSession, *, user_id: uuid.UUID) -> User | None:
    """The user if the account still exists and is enabled (live sockets re-check this)."""
    user = await get(session, user_id=user_id)
    return user if user is not None and user.is_active else None


async def get_or_raise(session: AsyncSession, *, user_id: uuid.UUID) -> User:
    user = await get(session, user_id=user_id)
    if user is None:
        raise NotFound("User not found")
    return user


async def get_by_email(session: AsyncSession, *, email: str) -> User | None:
    normalized = normalize_email(email)
    if normalized is None:
        return None
    result = await session.execute(select(User).where(User.email == normalized))
    return result.scalar_one_or_none()


async def get_by_subject(session: AsyncSession, *, subject: str) -> User | None:
    result = await session.execute(select(User).where(User.clerk_id == subject))
    return result.scalar_one_or_none()


async def create(
    session: AsyncSession,
    *,
    email: str,
    password: str | None,
    is_admin: bool = False,
    name: str | None = None,
    avatar_url: str | None = None,
) -> User:
    """A password user (or, with `password=None`, one that can only log in externally)."""
    normalized = normalize_email(email)
    if normalized is None:
        raise Conflict("An email address is required")
    if await get_by_email(session, email=normalized) is not None:
        raise Conflict("A user with this email already exists")
    user = User(
        email=normalized,
        name=name,
        avatar_url=avatar_url,
        is_admin=is_admin,
        password_hash=await _hash(password),
    )
    session.add(user)
    await _commit_unique_email(session)
    return user


async def update(
    session: AsyncSession,
    *,
    user: User,
    name: str | None = _UNSET,
    avatar_url: str | None = _UNSET,
    email: str | None = _UNSET,
    password: str | None = _UNSET,
    is_admin: bool | None = None,
    is_active: bool | None = None,
    hub: Hub | None = None,
    cache: Cache | None = None,
) -> User:
    """Change only the fields given; `None` clears a nullable field. Disabling the account
    or taking its admin rights away needs the `hub`, to close the sockets it no longer may
    hold (in every worker); disabling it also needs the `cache`, to drop its verified tokens."""
    disables = is_active is False and user.is_active
    revokes = disables or (is_admin is False and user.is_admin)
    if revokes and hub is None:
        raise ValueError("disabling a user or removing admin rights needs the hub")
    if disables and cache is None:
        raise ValueError("disabling a user needs the cache")
    if name is not _UNSET:
        user.name = name
    if avatar_url is not _UNSET:
        user.avatar_url = avatar_url
    if email is not _UNSET:
        normalized = normalize_email(email)
        if normalized is not None and normalized != user.email:
            other = await get_by_email(session, email=normalized)
            if other is not None and other.id != user.id:
                raise Conflict("A user with this email already exists")
        user.email = normalized
    if password is not _UNSET:
        user.password_hash = await _hash(password)
    if is_admin is not None:
        user.is_admin = is_admin
    if is_active is not None:
        user.is_active = is_active
    await _commit_unique_email(session)
    if disables:
        assert cache is not None and hub is not None
        await _shut_out(cache, hub, user_id=user.id, subject=user.clerk_id)
    elif revokes:
        assert hub is not None
        await announce_access_change(hub, channels=[user_channel(user.id)])
    return user


async def _shut_out(cache: Cache, hub: Hub, *, user_id: uuid.UUID, subject: str | None) -> None:
    """Forget the account's verified tokens and close its live sockets (4403) in every worker."""
    await _forget_verified_tokens(cache, user_id=user_id, subject=subject)
    await announce_access_change(hub, channels=[user_channel(user_id)])


async def _commit_unique_email(session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        # A concurrent request won the race between our e-mail check and the write.
        await session.rollback()
        raise Conflict("A user with this email already exists") from exc


async def delete(session: AsyncSession, *, user: User, hub: Hub, cache: Cache) -> None:
    """Delete the account; its verified tokens are forgotten and its open live sockets close
    (4403) in every worker."""
    user_id, subject = user.id, user.clerk_id
    await session.delete(user)
    await session.commit()
    await _shut_out(cache, hub, user_id=user_id, subject=subject)


async def deactivate(session: AsyncSession, *, user: User, hub: Hub, cache: Cache) -> User:
    """Disable the account and forget its personal data, keeping the row for references;
    its verified tokens are forgotten and its open live sockets close (4403) in every worker.

    `clerk_id` stays so that a still-valid external token finds the disabled user (403)
    instead of provisioning a fresh one.
    """
    user.is_active = False
    user.email = None
    user.name = None
    user.username = None
    user.first_name = None
    user.last_name = None
    user.avatar_url = None
    user.password_hash = None
    await session.commit()
    await _shut_out(cache, hub, user_id=user.id, subject=user.clerk_id)
    return user


def display_name(
    first_name: str | None, last_name: str | None, username: str | None = None
) -> str | None:
    """The display name an identity provider's profile gives: "first last", else the username."""
    parts = (p.strip() for p in (first_name, last_name) if isinstance(p, str))
    return " ".join(p for p in parts if p) or (username or None)


def admin_claim(claims: Mapping[str, Any], paths: str) -> bool | None:
    """What verified claims (a token's, a Clerk webhook's user) say of admin rights: the first
    of the comma-separated dotted `paths` whose parent object is present decides (`true`
    grants, any other value or none revokes); None when no such object is there (silent).

    Only ever read from verified data, and by default from Clerk's `public_metadata`, which
    only Clerk's backend can write (never `unsafe_metadata`, which the user can)."""
    for path in filter(None, (p.strip() for p in paths.split(","))):
        *parents, leaf = path.split(".")
        node: Any = claims
        for part in parents:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            return node.get(leaf) is True
    return None


async def set_admin(session: AsyncSession, *, user: User, is_admin: bool, hub: Hub | None) -> None:
    """Grant or revoke admin rights as the identity provider says; a revocation closes the
    account's live sockets in every worker (when a `hub` is at hand)."""
    revokes = user.is_admin and not is_admin
    user.is_admin = is_admin
    await session.commit()
    if revokes and hub is not None:
        await announce_access_change(hub, channels=[user_channel(user.id)])
    log.info(
        "admin rights of %s %s by the identity provider",
        user.id,
        "granted" if is_admin else "revoked",
    )


async def upsert_from_claims(
    session: AsyncSession,
    *,
    subject: str,
    email: str | None = None,
    name: str | None = None,
    avatar_url: str | None = None,
    is_admin: bool | None = None,
    hub: Hub | None = None,
    username: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> User:
    """Create or refresh the user of an external subject (a token's `sub`, a Clerk user id).

    Idempotent; the profile (email, names, picture) is replaced by the one given, as the
    provider sends the whole user each time. An email that already belongs to another
    account is not taken over: the user is kept (or created) without it. `is_admin` (None:
    leave as is) sets admin rights; a revocation closes live sockets through the `hub`.
    """
    for attempt in range(2):
        user = await get_by_subject(session, subject=subject)
        normalized = normalize_email(email)
        if normalized is not None:
            owner = await get_by_email(session, email=normalized)
            if owner is not None and (user is None or owner.id != user.id):
                normalized = None if user is None else user.email
        revokes = False
        if user is None:
            user = User(
                clerk_id=subject,
                email=normalized,
                name=name,
                username=username,
                first_name=first_name,
                last_name=last_name,
                avatar_url=avatar_url,
                is_admin=bool(is_admin),
            )
            session.add(user)
        elif user.is_active:
            user.email = normalized
            user.name = name
            user.username = username
            user.first_name = first_name
            user.last_name = last_name
            user.avatar_url = avatar_url
            if is_admin is not None:
                revokes = user.is_admin and not is_admin
                user.is_admin = is_admin
        try:
            await session.commit()
        except IntegrityError:
            # Two first requests of one subject raced; the second re-reads the winner's row.
            await session.rollback()
            if attempt:
                raise
            continue
        if revokes and hub is not None:
            await announce_access_change(hub, channels=[user_channel(user.id)])
        return user
    raise AssertionError("unreachable")
