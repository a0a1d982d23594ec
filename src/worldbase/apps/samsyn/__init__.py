"""The samsyn app (seed app; see DESIGN.md section 3)."""

from worldbase.apps.samsyn import jobs, models, seed
from worldbase.apps.samsyn.router import router
from worldbase.apps.samsyn.settings import SamsynSettings
from worldbase.core.appspec import AppSpec

spec = AppSpec(
    name="samsyn",
    routers=(router,),
    jobs=jobs.HANDLERS,
    heavy_jobs=jobs.HEAVY_KINDS,
    staging_prefixes=jobs.STAGING_PREFIXES,
    seeder=seed.seed_demo,
    settings=SamsynSettings,
    models=models,
)
