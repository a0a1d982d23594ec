"""The bestiary app (seed app; see DESIGN.md section 3)."""

from worldbase.apps.bestiary import jobs, models, seed
from worldbase.apps.bestiary.router import router
from worldbase.apps.bestiary.settings import BestiarySettings
from worldbase.core.appspec import AppSpec

spec = AppSpec(
    name="bestiary",
    routers=(router,),
    jobs=jobs.HANDLERS,
    heavy_jobs=jobs.HEAVY_KINDS,
    seeder=seed.seed_demo,
    settings=BestiarySettings,
    models=models,
)
