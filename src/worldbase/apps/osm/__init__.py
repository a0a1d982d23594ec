"""The osm app (seed app; see DESIGN.md section 3)."""

from worldbase.apps.osm import cli, jobs, models, seed
from worldbase.apps.osm.router import router
from worldbase.core.appspec import AppSpec

spec = AppSpec(
    name="osm",
    routers=(router,),
    jobs=jobs.HANDLERS,
    heavy_jobs=jobs.HEAVY_KINDS,
    periodic_jobs=jobs.SCHEDULES,
    seeder=seed.seed_demo,
    import_commands=cli.register,
    models=models,
)
