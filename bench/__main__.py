"""`python -m bench`: run every benchmark in turn."""

from bench import bestiary, core_overhead, dnd, habitats, osm, samsyn

core_overhead.run()
samsyn.run()
dnd.run()
osm.run()
bestiary.run()
habitats.run()
