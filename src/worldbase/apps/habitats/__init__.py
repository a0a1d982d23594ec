"""The habitats app (seed app; see DESIGN.md section 3)."""

from worldbase.apps.habitats import cli, models, raster, seed
from worldbase.apps.habitats.router import router
from worldbase.apps.habitats.settings import HabitatsSettings
from worldbase.core.appspec import AppSpec

spec = AppSpec(
    name="habitats",
    routers=(router,),
    seeder=seed.seed_demo,
    import_commands=cli.register,
    settings=HabitatsSettings,
    # The game reads the habitat raster through /cog.
    public_rasters=lambda settings: (raster.configured_url(settings),),
    models=models,
)
