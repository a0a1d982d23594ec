"""Demo data and account set-up for the CLI. Like app.py, this is a composition root: it
runs each enabled app's seeder (`AppSpec.seeder`)."""

from __future__ import annotations

from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email

from worldbase.core import users
from worldbase.core.appspec import AppSpec
from worldbase.core.db import Database
from worldbase.core.users import hash_password
from worldbase.settings import Settings

DEMO_EMAIL = "demo@worldbase.example"
DEMO_PASSWORD = "worldbase-demo"  # noqa: S105 - development-only demo account, refused in production


async def create_or_update_user(
    settings: Settings, *, email: str, password: str, admin: bool, name: str | None = None
) -> tuple[bool, str]:
    """(created?, normalized e-mail): created is False when an existing user was updated."""
    try:
        email = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(f"invalid e-mail address: {exc}") from exc
    if not 8 <= len(password) <= 128:
        raise ValueError("the password must have 8 to 128 characters")
    database = Database(settings, pooled=False)
    try:
        async with database.sessionmaker() as session:
            existing = await users.get_by_email(session, email=email)
            if existing is None:
                await users.create(
                    session, email=email, password=password, is_admin=admin, name=name
                )
                created = True
            else:
                existing.password_hash = hash_password(password)
                existing.is_admin = admin or existing.is_admin
                existing.is_active = True
                if name:
                    existing.name = name
                created = False
            await session.commit()
        return created, email
    finally:
        await database.dispose()


async def seed_demo_data(settings: Settings, apps: Sequence[AppSpec] | None = None) -> list[str]:
    """Runs the seeders of the enabled apps of `apps` (default: the registry's)."""
    lines: list[str] = []
    if not settings.is_production:
        created, _ = await create_or_update_user(
            settings, email=DEMO_EMAIL, password=DEMO_PASSWORD, admin=False, name="Demo user"
        )
        verb = "created" if created else "kept"
        lines.append(f"{verb} demo user {DEMO_EMAIL} / {DEMO_PASSWORD}")
    # Imported here: app seeders import this module (DEMO_EMAIL).
    from worldbase.apps import registry

    database = Database(settings, pooled=False)
    try:
        for spec in registry.enabled(settings, registry.APPS if apps is None else apps):
            if spec.seeder is None:
                continue
            async with database.sessionmaker() as session:
                lines.append(f"{spec.name}: {await spec.seeder(session, settings)}")
                await session.commit()
    finally:
        await database.dispose()
    return lines
