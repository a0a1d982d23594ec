"""`python -m bench`: run every benchmark in turn."""

from bench import bestiary, core_overhead, dnd, habitats, osm, raster, samsyn

core_overhead.run()
samsyn.run()
raster.run()
dnd.run()
osm.run()
bestiary.run()
habitats.run()
