"""Demo data and account set-up for the CLI. Like app.py, this is a composition root: it
imports each enabled app's `seed` module, whose `async seed_demo(session, settings) -> str`
loads that app's demo data idempotently and says what it did in one line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.core import users
from worldbase.core.db import Database
from worldbase.core.users import hash_password
from worldbase.plugins import app_modules
from worldbase.settings import Settings

DEMO_EMAIL = "demo@worldbase.example"
DEMO_PASSWORD = "worldbase-demo"  # noqa: S105 - development-only demo account, refused in production

DemoSeeder = Callable[[AsyncSession, Settings], Awaitable[str]]


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


async def seed_demo_data(settings: Settings) -> list[str]:
    lines: list[str] = []
    if not settings.is_production:
        created, _ = await create_or_update_user(
            settings, email=DEMO_EMAIL, password=DEMO_PASSWORD, admin=False, name="Demo user"
        )
        verb = "created" if created else "kept"
        lines.append(f"{verb} demo user {DEMO_EMAIL} / {DEMO_PASSWORD}")
    database = Database(settings, pooled=False)
    try:
        for module in app_modules(settings.worldbase_apps, "seed"):
            seeder: DemoSeeder = module.seed_demo
            app = module.__name__.split(".")[2]
            async with database.sessionmaker() as session:
                lines.append(f"{app}: {await seeder(session, settings)}")
                await session.commit()
    finally:
        await database.dispose()
    return lines
