"""`python -m bench`: run every benchmark in turn."""

from bench import (
    bestiary,
    core_overhead,
    dnd,
    dos,
    habitats,
    osm,
    raster,
    samsyn,
    samsyn_v1,
    samsyn_wms,
)

core_overhead.run()
samsyn.run()
raster.run()
samsyn_wms.run()
samsyn_v1.run()
dnd.run()
osm.run()
bestiary.run()
habitats.run()
dos.run()
