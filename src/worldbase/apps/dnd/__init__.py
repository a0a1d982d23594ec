"""The dnd app (seed app; see DESIGN.md section 3)."""

from worldbase.apps.dnd import jobs, models, seed, service
from worldbase.apps.dnd.router import router
from worldbase.apps.dnd.settings import DndSettings
from worldbase.core.appspec import AppSpec

spec = AppSpec(
    name="dnd",
    routers=(router,),
    jobs=jobs.HANDLERS,
    periodic_jobs=jobs.SCHEDULES,
    seeder=seed.seed_demo,
    health=service.count_total,
    health_checks=("images",),  # seed 002's monitors read `checks.images`
    settings=DndSettings,
    models=models,
)
