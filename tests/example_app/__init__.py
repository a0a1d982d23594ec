"""A sixth app, as small as one can be: a route, a setting, a job and a seeder.

It is what README's "Adding an app" shows; tests/test_example_app.py mounts it through
the same `AppSpec` list the five apps go through.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from worldbase.core.appspec import AppSpec
from worldbase.core.jobs import JobContext
from worldbase.core.services import ServicesDep
from worldbase.settings import AppSettings, Settings, env

GREET_KIND = "example.greet"


class ExampleSettings(AppSettings):
    model_config = SettingsConfigDict(env_prefix="example_")

    # EXAMPLE_GREETING, or HELLO_TEXT: an older name kept as an alias.
    greeting: str = Field(default="hello", validation_alias=env("example_greeting", "hello_text"))


router = APIRouter(prefix="/example")


@router.get("/greeting", summary="The configured greeting")
async def greeting(services: ServicesDep) -> dict[str, str]:
    return {"greeting": services.settings.app(ExampleSettings).greeting}


@router.post("/greetings", status_code=202, summary="Greet someone in a job")
async def greet_later(name: str, services: ServicesDep) -> dict[str, str]:
    job = await services.jobs.enqueue(kind=GREET_KIND, params={"name": name})
    return {"job_id": str(job.id)}


@router.get("/greetings/{job_id}", summary="A greeting job's state and result")
async def greeting_job(job_id: uuid.UUID, services: ServicesDep) -> dict[str, Any]:
    job = await services.jobs.get(job_id)
    return {"status": str(job.status.value), "result": job.result}


async def greet(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"text": f"{ctx.settings.app(ExampleSettings).greeting}, {params['name']}"}


SEEDED: list[str] = []  # what the seeder did (the example has no tables)


async def seed_demo(session: AsyncSession, settings: Settings) -> str:
    SEEDED.append(settings.app(ExampleSettings).greeting)
    return "nothing to load"


spec = AppSpec(
    name="example",
    routers=(router,),
    jobs={GREET_KIND: greet},
    seeder=seed_demo,
    settings=ExampleSettings,
)
