"""samsyn: raster."""
